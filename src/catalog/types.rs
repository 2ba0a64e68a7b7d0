//! Column types: type OIDs resolved through domains and arrays to the representation the
//! document and the COPY codecs use.

use std::collections::{BTreeSet, HashMap};

use tokio_postgres::GenericClient;

use super::{query_error, CatalogError};
use crate::record::Repr;

/// Resolves type OIDs through domains to a [`Repr`].
pub(super) struct TypeResolver {
    /// oid → (typtype, typbasetype, typelem, typcategory)
    types: HashMap<u32, (String, u32, u32, String)>,
}

impl TypeResolver {
    pub(super) async fn load(
        client: &impl GenericClient,
        mut pending: BTreeSet<u32>,
    ) -> Result<TypeResolver, CatalogError> {
        let mut types = HashMap::new();
        // Domains and arrays point at further types: follow them until all are known.
        while !pending.is_empty() {
            let oids: Vec<u32> = pending.iter().copied().collect();
            let rows = client
                .query(
                    "SELECT oid, typtype::text, typbasetype, typelem, typcategory::text \
                     FROM pg_type WHERE oid = ANY($1)",
                    &[&oids],
                )
                .await
                .map_err(query_error)?;
            pending.clear();
            for row in rows {
                let oid: u32 = row.get(0);
                let base: u32 = row.get(2);
                let elem: u32 = row.get(3);
                for next in [base, elem] {
                    if next != 0 && !types.contains_key(&next) && next != oid {
                        pending.insert(next);
                    }
                }
                types.insert(oid, (row.get(1), base, elem, row.get(4)));
            }
            pending.retain(|oid| !types.contains_key(oid));
        }
        Ok(TypeResolver { types })
    }

    /// Follows domains down to a base type.
    fn base(&self, mut oid: u32) -> u32 {
        for _ in 0..32 {
            match self.types.get(&oid) {
                Some((typtype, base, _, _)) if typtype == "d" && *base != 0 => oid = *base,
                _ => break,
            }
        }
        oid
    }

    /// (representation, is-array, binary-native, base type oid) of a column type.
    pub(super) fn repr_of(&self, oid: u32) -> (Repr, bool, bool, u32) {
        let base = self.base(oid);
        if let Some((_, _, elem, category)) = self.types.get(&base) {
            if category == "A" && *elem != 0 {
                let elem_base = self.base(*elem);
                let repr = scalar_repr(elem_base).unwrap_or(Repr::Text);
                return (repr, true, binary_native(elem_base), base);
            }
        }
        let repr = scalar_repr(base).unwrap_or(Repr::Text);
        (repr, false, binary_native(base), base)
    }
}

/// The representation of a built-in base type; `None` for types read through their text output.
pub fn scalar_repr(oid: u32) -> Option<Repr> {
    Some(match oid {
        16 => Repr::Bool,
        20 => Repr::Int8,
        21 => Repr::Int2,
        23 => Repr::Int4,
        26 => Repr::Oid,
        700 => Repr::Float4,
        701 => Repr::Float8,
        1700 => Repr::Numeric,
        1114 => Repr::Timestamp,
        1184 => Repr::TimestampTz,
        1082 => Repr::Date,
        1083 => Repr::Time,
        1266 => Repr::TimeTz,
        114 => Repr::JsonText,
        3802 => Repr::Json,
        17 => Repr::Bytea,
        25 | 1043 | 1042 => Repr::Text,
        _ => return None,
    })
}

/// Whether values of this base type travel in their own binary format: every mapped type except
/// numeric and json/jsonb (whose text is what the document holds) and the types without a mapping.
fn binary_native(oid: u32) -> bool {
    scalar_repr(oid).is_some_and(|repr| repr != Repr::Numeric && !repr.is_json())
}
