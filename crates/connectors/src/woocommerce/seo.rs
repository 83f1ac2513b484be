//! SEO title and meta description on WooCommerce. WooCommerce has no SEO fields: the SEO
//! plugin the merchant runs keeps them in the product's post meta, which the REST API shows
//! (and accepts) as `meta_data: [{key, value}]`. The plugin is detected from the keys a
//! product carries.
//!
//! Meta keys, as found in public sources:
//! - Yoast SEO: `_yoast_wpseo_title`, `_yoast_wpseo_metadesc` (the custom-field table of
//!   the Yoast import add-on, `pantheon-systems/WordPress`
//!   `wp-content/plugins/yoast-seo-settings-xml-csv-import/README.md`, and many integrations).
//! - Rank Math: `rank_math_title`, `rank_math_description` (third-party integrations and a
//!   "Rank Math Meta Keys Reference" noting that titles take `%title%`-style variables).
//! - All in One SEO 4: `_aioseo_title`, `_aioseo_description`. AIOSEO keeps the values it
//!   renders in its own `aioseo_posts` table and copies them into these meta keys "for
//!   localization" (`Models/Post.php::updatePostMeta` of the plugin). Writing the meta through
//!   WooCommerce therefore may not change what AIOSEO renders until the post is saved in its
//!   editor: a known limit of writing AIOSEO through the WooCommerce API. (AIOSEO 2/3 used
//!   `_aioseop_title` / `_aioseop_description`; not handled.)
//! - SEOPress: `_seopress_titles_title`, `_seopress_titles_desc`
//!   (`JoseSoteloCohen/SEO-REST-API-for-SEOPress` `Seopress-names.md`).
//!
//! Yoast and Rank Math titles can hold template variables (`%%title%% %%sep%% %%sitename%%`,
//! `%title%`): they are read as stored, not expanded, so a round trip keeps them.

use super::WooMeta;

/// A WordPress SEO plugin whose title and meta description the service reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeoPlugin {
    Yoast,
    RankMath,
    AllInOneSeo,
    SeoPress,
}

impl SeoPlugin {
    /// In detection order: the most installed first, so a product carrying leftovers of
    /// several plugins with no values resolves the same way every time.
    pub const ALL: [SeoPlugin; 4] = [
        SeoPlugin::Yoast,
        SeoPlugin::RankMath,
        SeoPlugin::AllInOneSeo,
        SeoPlugin::SeoPress,
    ];

    pub fn title_key(self) -> &'static str {
        match self {
            SeoPlugin::Yoast => "_yoast_wpseo_title",
            SeoPlugin::RankMath => "rank_math_title",
            SeoPlugin::AllInOneSeo => "_aioseo_title",
            SeoPlugin::SeoPress => "_seopress_titles_title",
        }
    }

    pub fn description_key(self) -> &'static str {
        match self {
            SeoPlugin::Yoast => "_yoast_wpseo_metadesc",
            SeoPlugin::RankMath => "rank_math_description",
            SeoPlugin::AllInOneSeo => "_aioseo_description",
            SeoPlugin::SeoPress => "_seopress_titles_desc",
        }
    }

    fn has_key(self, meta: &[WooMeta]) -> bool {
        meta.iter()
            .any(|m| m.key == self.title_key() || m.key == self.description_key())
    }

    /// The plugin whose keys the product carries. When several do (a store that switched
    /// plugins keeps the old meta), the one with a non-empty value wins.
    pub fn detect(meta: &[WooMeta]) -> Option<SeoPlugin> {
        let present: Vec<SeoPlugin> = Self::ALL
            .into_iter()
            .filter(|plugin| plugin.has_key(meta))
            .collect();
        present
            .iter()
            .copied()
            .find(|plugin| {
                let (title, description) = plugin.read(meta);
                title.is_some() || description.is_some()
            })
            .or_else(|| present.first().copied())
    }

    /// `(title, description)`: the plugin's values when present and not blank, as stored.
    pub fn read(self, meta: &[WooMeta]) -> (Option<String>, Option<String>) {
        let value = |key: &str| {
            meta.iter()
                .find(|m| m.key == key)
                .and_then(|m| m.value.as_str())
                .filter(|text| !text.trim().is_empty())
                .map(str::to_owned)
        };
        (value(self.title_key()), value(self.description_key()))
    }

    /// The `meta_data` entries that write these values.
    pub fn meta_entries(
        self,
        title: Option<&str>,
        description: Option<&str>,
    ) -> Vec<serde_json::Value> {
        let mut entries = Vec::new();
        if let Some(title) = title {
            entries.push(serde_json::json!({"key": self.title_key(), "value": title}));
        }
        if let Some(description) = description {
            entries.push(serde_json::json!({"key": self.description_key(), "value": description}));
        }
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> Vec<WooMeta> {
        pairs
            .iter()
            .map(|(key, value)| WooMeta {
                key: (*key).into(),
                value: (*value).into(),
            })
            .collect()
    }

    #[test]
    fn detects_the_plugin_with_values_and_keeps_template_variables() {
        let both = meta(&[
            ("_yoast_wpseo_title", ""),
            ("rank_math_title", "%title% %sep% Shop"),
            ("rank_math_description", "Soft cotton."),
        ]);
        assert_eq!(SeoPlugin::detect(&both), Some(SeoPlugin::RankMath));
        assert_eq!(
            SeoPlugin::RankMath.read(&both),
            (
                Some("%title% %sep% Shop".into()),
                Some("Soft cotton.".into())
            )
        );
        assert_eq!(
            SeoPlugin::detect(&meta(&[("_seopress_titles_desc", "")])),
            Some(SeoPlugin::SeoPress)
        );
        assert_eq!(SeoPlugin::detect(&meta(&[("brand", "Acme")])), None);
    }
}
