//! Text job items: one product attribute rewritten by the configured AI provider, checked
//! and repaired before it is stored.

use std::sync::Arc;

use ai::{AiError, TextOptimizer, TextTask};
use async_trait::async_trait;
use storage::ClaimedItem;

use crate::engine::{ItemError, ItemProcessor, ProcessedItem};

/// Works text items through a [`TextOptimizer`].
pub struct TextProcessor {
    pub provider: Arc<dyn TextOptimizer>,
}

impl From<AiError> for ItemError {
    fn from(err: AiError) -> Self {
        ItemError {
            code: err.code().to_owned(),
            message: err.to_string(),
            retryable: err.is_retryable(),
            retry_after: err.retry_after(),
            rate_limited: matches!(err, AiError::RateLimited { .. }),
        }
    }
}

#[async_trait]
impl ItemProcessor for TextProcessor {
    async fn process(&self, item: &ClaimedItem) -> Result<ProcessedItem, ItemError> {
        let Some((product, revision)) = &item.product else {
            return Err(ItemError::fatal(
                "product_gone",
                "the product is no longer in the store's catalog",
            ));
        };
        let task = TextTask {
            product,
            attribute: item.attribute,
            target_lang: item.target_lang.as_deref(),
            user_prompt: item.user_prompt.as_deref(),
            brand_voice: item.brand_voice.as_deref(),
            platform: item.platform,
        };
        let after = self.provider.optimize(&task).await?;
        // The provider repairs its own output; a last check here keeps an empty or
        // mis-shaped value out of the store whatever the provider did.
        let after = domain::content::repair(item.platform, item.attribute, after)
            .map_err(|err| ItemError::fatal("invalid_output", err.to_string()))?;
        Ok(ProcessedItem {
            before: item.attribute.read(product),
            after,
            product_revision: *revision,
        })
    }
}
