//! Subscription plans. Each plan grants a number of credits every month; credits do not
//! roll over.

use serde::{Deserialize, Serialize};

/// A plan's stable identifier (`free`, `starter`, `pro`, `scale`).
pub type PlanId = String;

/// The plan every new account starts on.
pub const FREE_PLAN_ID: &str = "free";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub id: PlanId,
    pub name: String,
    /// Monthly price in US cents.
    pub price_monthly_cents: i64,
    pub monthly_credits: i64,
    /// What a standalone account (one not billed through Wix) gets instead each month, when
    /// the operator sets it: a sign-up costs nothing, so an installation open to the public
    /// may give its free plan less (or nothing) to standalone accounts. `None`: the same.
    #[serde(default)]
    pub standalone_monthly_credits: Option<i64>,
}

impl Plan {
    pub fn new(id: &str, name: &str, price_monthly_cents: i64, monthly_credits: i64) -> Self {
        Plan {
            id: id.to_owned(),
            name: name.to_owned(),
            price_monthly_cents,
            monthly_credits,
            standalone_monthly_credits: None,
        }
    }

    /// The credits this plan grants each month to an account billed through `source`.
    pub fn credits_for(&self, source: crate::BillingSource) -> i64 {
        match (source, self.standalone_monthly_credits) {
            (crate::BillingSource::Wix, _) | (_, None) => self.monthly_credits,
            (_, Some(credits)) => credits,
        }
    }
}

/// The plans the product ships with; operators can override prices and credits in
/// configuration.
pub fn default_plans() -> Vec<Plan> {
    vec![
        Plan::new(FREE_PLAN_ID, "Free", 0, 200),
        Plan::new("starter", "Starter", 900, 1_000),
        Plan::new("pro", "Pro", 1_900, 5_000),
        Plan::new("scale", "Scale", 4_900, 25_000),
    ]
}

/// The plan a billing system names. Wix names plans by their `vendorProductId`; the
/// operator maps those to plan ids in configuration (`aliases`: name → plan id), and the
/// usual spellings of a plan are understood without configuration: `starter`,
/// `Starter-Plan`, `starter_monthly`, `STARTER-YEARLY` all mean `starter`. `None` when
/// nothing matches (the caller decides; billing falls back to the free plan and logs).
pub fn resolve_plan<'a>(
    name: &str,
    plans: &'a [Plan],
    aliases: &std::collections::HashMap<String, PlanId>,
) -> Option<&'a Plan> {
    let name = name.trim();
    if let Some(plan_id) = aliases.get(name) {
        return plans.iter().find(|plan| &plan.id == plan_id);
    }
    let normalized = name.to_ascii_lowercase().replace([' ', '_'], "-");
    let base = ["-plan", "-monthly", "-yearly", "-annual"]
        .iter()
        .find_map(|suffix| normalized.strip_suffix(suffix))
        .unwrap_or(&normalized);
    plans
        .iter()
        .find(|plan| plan.id == base || plan.name.to_ascii_lowercase().replace(' ', "-") == base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plans_match_the_published_price_list() {
        let plans = default_plans();
        let summary: Vec<(&str, i64, i64)> = plans
            .iter()
            .map(|p| (p.id.as_str(), p.price_monthly_cents, p.monthly_credits))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("free", 0, 200),
                ("starter", 900, 1_000),
                ("pro", 1_900, 5_000),
                ("scale", 4_900, 25_000)
            ]
        );
    }

    #[test]
    fn plan_names_resolve_in_their_usual_spellings_and_through_aliases() {
        let plans = default_plans();
        let aliases = std::collections::HashMap::from([(
            "e8f429d5-0a6a-468f-8044-87f519a53202".to_owned(),
            "pro".to_owned(),
        )]);
        for name in [
            "starter",
            "Starter",
            "starter-plan",
            "STARTER-MONTHLY",
            "starter-yearly",
            "starter_monthly",
            " Starter Plan ",
        ] {
            assert_eq!(
                resolve_plan(name, &plans, &aliases).map(|p| p.id.as_str()),
                Some("starter"),
                "{name}"
            );
        }
        assert_eq!(
            resolve_plan("scale-yearly", &plans, &aliases).map(|p| p.id.as_str()),
            Some("scale")
        );
        assert_eq!(
            resolve_plan("e8f429d5-0a6a-468f-8044-87f519a53202", &plans, &aliases)
                .map(|p| p.id.as_str()),
            Some("pro")
        );
        assert_eq!(resolve_plan("platinum", &plans, &aliases), None);
        assert_eq!(resolve_plan("starterish", &plans, &aliases), None);
        assert_eq!(resolve_plan("", &plans, &aliases), None);
    }
}
