//! The transforms of a pipeline bound to one table: bound once when the table begins, applied in
//! order to each of its batches, dropped when it ends.
//!
//! A transform that cannot bind (the table lacks a column it targets) fails on the table's first
//! batch, after the transforms before it applied to that batch, never when the table begins: a
//! table without rows is never refused, and errors come in the order of the transforms.

use super::{BoundTransform, Transform, TransformError};
use crate::record::{Batch, TableSchema};

/// The pipeline's transforms bound to one table (see [`Transform`] for the rules).
pub struct TableTransforms<'t> {
    /// The transforms that target the table, in pipeline order, up to the first that failed to
    /// bind.
    bound: Vec<Box<dyn BoundTransform + 't>>,
    /// The error of the first transform that failed to bind; the ones after it are not bound.
    unbound: Option<TransformError>,
}

impl<'t> TableTransforms<'t> {
    /// Binds each of `transforms`, in order, to `table`. Never fails: an error of a transform's
    /// bind is kept and returned by [`apply`](Self::apply).
    pub fn bind(transforms: &'t [Box<dyn Transform>], table: &TableSchema) -> TableTransforms<'t> {
        let mut bound = Vec::new();
        for transform in transforms {
            match transform.bind(table) {
                Ok(Some(transform)) => bound.push(transform),
                Ok(None) => {}
                Err(error) => {
                    return TableTransforms {
                        bound,
                        unbound: Some(error),
                    }
                }
            }
        }
        TableTransforms {
            bound,
            unbound: None,
        }
    }

    /// Applies the bound transforms, in order, to a batch of the table; then the error of the
    /// transform that failed to bind, if one did.
    pub fn apply(&mut self, batch: &mut Batch) -> Result<(), TransformError> {
        for transform in &mut self.bound {
            transform.apply(batch)?;
        }
        match &self.unbound {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::super::testing::*;
    use super::*;

    /// Counts binds and applications; targets `User` only.
    #[derive(Default)]
    struct Counting {
        binds: Arc<AtomicUsize>,
        applies: Arc<AtomicUsize>,
    }

    struct CountingBound(Arc<AtomicUsize>);

    impl Transform for Counting {
        fn bind<'t>(
            &'t self,
            table: &TableSchema,
        ) -> Result<Option<Box<dyn BoundTransform + 't>>, TransformError> {
            self.binds.fetch_add(1, Ordering::Relaxed);
            Ok((table.model == "User")
                .then(|| Box::new(CountingBound(self.applies.clone())) as Box<dyn BoundTransform>))
        }
    }

    impl BoundTransform for CountingBound {
        fn apply(&mut self, _: &mut Batch) -> Result<(), TransformError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }

    #[test]
    fn binds_once_per_table_and_applies_to_every_batch() {
        let counting = Counting::default();
        let (binds, applies) = (counting.binds.clone(), counting.applies.clone());
        let filter = config(
            "type = \"filter\"\nmodel = \"User\"\nconditions = [{ column = \"age\", op = \"<\", \
             value = 18 }]",
        )
        .build()
        .unwrap();
        let transforms: Vec<Box<dyn Transform>> = vec![Box::new(counting), filter];
        let users = users();
        let mut bound = TableTransforms::bind(&transforms, &users);
        assert_eq!(binds.load(Ordering::Relaxed), 1);
        for (age, kept) in [(17, 0), (18, 1), (40, 1), (3, 0)] {
            let age = i32::to_be_bytes(age);
            let mut batch = user_rows(&[&[(6, &age)], &[]]);
            bound.apply(&mut batch).unwrap();
            // The row without an age is kept: a NULL comparison is never true.
            assert_eq!(batch.rows(), kept + 1, "age {age:?}");
        }
        assert_eq!(binds.load(Ordering::Relaxed), 1);
        assert_eq!(applies.load(Ordering::Relaxed), 4);

        // Another table: bound again, but neither transform targets it.
        let mut bound = TableTransforms::bind(&transforms, &tagged("Team", &["age"]));
        assert_eq!(binds.load(Ordering::Relaxed), 2);
        let mut batch = single(&[Some(b"n3")]);
        bound.apply(&mut batch).unwrap();
        assert_eq!(batch.rows(), 1);
        assert_eq!(applies.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn an_unbindable_transform_fails_on_the_first_batch_after_those_before_it() {
        // An export document's model without records has no columns: binding does not fail.
        let redact = config("type = \"redact\"\nmodel = \"User\"\ncolumns = [\"bio\"]")
            .build()
            .unwrap();
        let null = config("type = \"null\"\nmodel = \"User\"\ncolumns = [\"nope\"]")
            .build()
            .unwrap();
        let transforms = vec![redact, null];
        drop(TableTransforms::bind(&transforms, &tagged("User", &[])));
        // With rows, the redaction before it applies, then the error comes.
        let mut bound = TableTransforms::bind(&transforms, &users());
        let mut batch = user_rows(&[&[(5, b"secret")]]);
        let error = bound.apply(&mut batch).unwrap_err().to_string();
        assert_eq!(
            error,
            "model User, column nope: the table has no such column"
        );
        assert_eq!(cell_string(&batch, 0, 5).unwrap(), "REDACTED");
    }
}
