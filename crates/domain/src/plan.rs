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
}

impl Plan {
    pub fn new(id: &str, name: &str, price_monthly_cents: i64, monthly_credits: i64) -> Self {
        Plan {
            id: id.to_owned(),
            name: name.to_owned(),
            price_monthly_cents,
            monthly_credits,
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
}
