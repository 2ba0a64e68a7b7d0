//! `exclude_models`: leaves whole models out of the output. The pipeline removes them from the
//! source's selection, so they are never read; the transform it builds drops any row of them that
//! still arrives, so nothing of an excluded model can leak.

use serde::Deserialize;

use super::{BoundTransform, Transform, TransformError};
use crate::record::{Batch, TableSchema};

/// `type = "exclude_models"`: models left out of the output.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ExcludeModelsConfig {
    /// The models to leave out.
    pub models: Vec<String>,
}

impl ExcludeModelsConfig {
    /// Checks the list names at least one model.
    pub fn validate(&self) -> Result<(), TransformError> {
        if self.models.is_empty() || self.models.iter().any(|m| m.trim().is_empty()) {
            return Err(TransformError::Config(
                "exclude_models transform: models must list at least one model name".to_owned(),
            ));
        }
        Ok(())
    }

    /// Builds the row-dropping safety net.
    pub fn build(&self) -> Result<Box<dyn Transform>, TransformError> {
        Ok(Box::new(ExcludeModels(self.models.clone())))
    }
}

struct ExcludeModels(Vec<String>);

impl Transform for ExcludeModels {
    fn bind<'t>(
        &'t self,
        table: &TableSchema,
    ) -> Result<Option<Box<dyn BoundTransform + 't>>, TransformError> {
        Ok(self
            .0
            .contains(&table.model)
            .then(|| Box::new(DropAll) as Box<dyn BoundTransform>))
    }
}

/// Drops every row of an excluded model.
struct DropAll;

impl BoundTransform for DropAll {
    fn apply(&mut self, batch: &mut Batch) -> Result<(), TransformError> {
        batch.retain_rows(|_| false);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn drops_every_row_of_excluded_models_only() {
        let exclude =
            config("type = \"exclude_models\"\nmodels = [\"IndexingJob\", \"TokenBlacklist\"]");
        exclude.validate().unwrap();
        assert_eq!(exclude.kind(), "exclude_models");
        assert!(exclude.columns().is_empty());
        let transform = exclude.build().unwrap();
        let mut batch = single(&[Some(b"sx"), None]);
        transform
            .apply(&tagged("TokenBlacklist", &["jti"]), &mut batch)
            .unwrap();
        assert_eq!(batch.rows(), 0);
        let mut batch = single(&[Some(b"sx")]);
        transform
            .apply(&tagged("User", &["jti"]), &mut batch)
            .unwrap();
        assert_eq!(batch.rows(), 1);
        let error = parse("type = \"exclude_models\"\nmodels = []\nmodel = \"X\"").unwrap_err();
        assert!(error.contains("unknown field `model`"), "{error}");
        let error = config("type = \"exclude_models\"\nmodels = []")
            .validate()
            .unwrap_err();
        assert!(error.to_string().contains("at least one model"), "{error}");
    }
}
