//! The row key of a table: its single-column integer primary key, unique by definition. A unique
//! column's replacement is derived from it (through a [`KeyedPermutation`](super::permutation)),
//! so distinct rows get distinct replacements without remembering any value.

use crate::record::{tag, Batch, Repr, TableSchema};

/// Where a table's row key is and how its cells are encoded.
#[derive(Clone, Copy, Debug)]
pub struct RowKey {
    /// The primary-key column.
    index: usize,
    /// Its cells' encoding: binary integers, or an export document's numbers.
    repr: Repr,
}

impl RowKey {
    /// The row key of `table`; the error (without model and column, which the caller adds) says
    /// why the table has none.
    pub fn of(table: &TableSchema) -> Result<RowKey, String> {
        let &[index] = table.primary_key.as_slice() else {
            return Err(format!(
                "the column is unique, and its replacements are derived from the row's primary \
                 key so that distinct rows stay distinct, but model {} has {}",
                table.model,
                match table.primary_key.len() {
                    0 => "no primary key".to_owned(),
                    n => format!("a primary key of {n} columns"),
                }
            ));
        };
        let column = &table.columns[index];
        let integer = match column.repr {
            Repr::Int2 | Repr::Int4 | Repr::Int8 | Repr::Oid => column.binary && !column.array,
            Repr::Tagged => true,
            _ => false,
        };
        if !integer {
            return Err(format!(
                "the column is unique, and its replacements are derived from the row's primary \
                 key so that distinct rows stay distinct, but the primary key of model {} ({}) is \
                 of type {}, not an integer",
                table.model, column.name, column.type_name
            ));
        }
        Ok(RowKey {
            index,
            repr: column.repr,
        })
    }

    /// The key of `row` of `batch` as a number below 2^64: distinct keys give distinct numbers
    /// (a negative key is taken in two's complement).
    pub fn read(&self, batch: &Batch, row: usize) -> Result<u128, String> {
        let Some(cell) = batch.cell(row, self.index) else {
            return Err("the row's primary key is NULL".into());
        };
        let bad = || format!("the row's primary key is not a valid {} value", self.repr);
        let key: i64 = match self.repr {
            Repr::Int2 => i16::from_be_bytes(cell.try_into().map_err(|_| bad())?).into(),
            Repr::Int4 => i32::from_be_bytes(cell.try_into().map_err(|_| bad())?).into(),
            Repr::Oid => u32::from_be_bytes(cell.try_into().map_err(|_| bad())?).into(),
            Repr::Int8 => i64::from_be_bytes(cell.try_into().map_err(|_| bad())?),
            _ => match cell.split_first() {
                Some((&tag::NUMBER, digits)) => std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or_else(|| "the row's primary key is not an integer".to_owned())?,
                _ => return Err("the row's primary key is not a number".into()),
            },
        };
        Ok(u128::from(key as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn reads_integer_keys_of_both_cell_kinds() {
        let key = RowKey::of(&users()).unwrap();
        let mut batch = user_rows(&[&[(0, &7i32.to_be_bytes())], &[(0, &(-1i32).to_be_bytes())]]);
        assert_eq!(key.read(&batch, 0), Ok(7));
        assert_eq!(key.read(&batch, 1), Ok(u128::from(u64::MAX)));
        batch.set_cell(0, 0, None);
        assert!(key.read(&batch, 0).unwrap_err().contains("NULL"));
        batch.set_cell(0, 0, Some(b"xy"));
        assert!(key.read(&batch, 0).unwrap_err().contains("integer"));

        let mut table = tagged("T", &["id"]);
        table.primary_key = vec![0];
        let key = RowKey::of(&table).unwrap();
        let batch = single(&[Some(b"n42"), Some(b"s42"), Some(b"n4.5")]);
        assert_eq!(key.read(&batch, 0), Ok(42));
        assert!(key.read(&batch, 1).is_err());
        assert!(key.read(&batch, 2).is_err());
    }

    #[test]
    fn tables_without_a_single_integer_key_have_none() {
        let mut table = users();
        table.primary_key = vec![];
        assert!(RowKey::of(&table).unwrap_err().contains("no primary key"));
        table.primary_key = vec![0, 6];
        assert!(RowKey::of(&table)
            .unwrap_err()
            .contains("a primary key of 2 columns"));
        table.primary_key = vec![2];
        let error = RowKey::of(&table).unwrap_err();
        assert!(error.contains("(name) is of type"), "{error}");
    }
}
