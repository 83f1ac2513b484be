//! Credit arithmetic. Credits are money-like: the balance is kept as counters on the account
//! and every change is also written to an append-only ledger, in the same transaction.

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

/// What an account can still spend this month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditBalance {
    pub total: i64,
    pub used: i64,
    pub resets_on: NaiveDate,
}

impl CreditBalance {
    /// Credits left; never negative even if a plan change lowered the total below what was
    /// already used this month.
    pub fn remaining(&self) -> i64 {
        (self.total - self.used).max(0)
    }
}

/// Why a ledger row exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerReason {
    MonthlyGrant,
    PlanChange,
    Reserve,
    Refund,
    Adjustment,
}

impl LedgerReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerReason::MonthlyGrant => "monthly_grant",
            LedgerReason::PlanChange => "plan_change",
            LedgerReason::Reserve => "reserve",
            LedgerReason::Refund => "refund",
            LedgerReason::Adjustment => "adjustment",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            LedgerReason::MonthlyGrant,
            LedgerReason::PlanChange,
            LedgerReason::Reserve,
            LedgerReason::Refund,
            LedgerReason::Adjustment,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == value)
    }
}

/// One append-only ledger row. `reference` makes a retried operation idempotent: the pair
/// (reason, reference) is unique per account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub id: uuid::Uuid,
    pub account_id: uuid::Uuid,
    pub delta: i64,
    pub reason: LedgerReason,
    pub reference: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The day credits reset next: one calendar month after `from`, clamped to the month's end
/// (an account created on 31 January resets on 28 or 29 February).
pub fn next_reset_date(from: NaiveDate) -> NaiveDate {
    from.checked_add_months(Months::new(1))
        .unwrap_or_else(|| NaiveDate::from_ymd_opt(from.year(), 12, 31).unwrap_or(from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn remaining_never_goes_negative() {
        let balance = CreditBalance {
            total: 200,
            used: 250,
            resets_on: date(2026, 1, 1),
        };
        assert_eq!(balance.remaining(), 0);
        let balance = CreditBalance {
            total: 200,
            used: 20,
            resets_on: date(2026, 1, 1),
        };
        assert_eq!(balance.remaining(), 180);
    }

    #[test]
    fn reset_date_is_one_month_later_clamped_to_month_end() {
        assert_eq!(next_reset_date(date(2026, 11, 22)), date(2026, 12, 22));
        assert_eq!(next_reset_date(date(2026, 1, 31)), date(2026, 2, 28));
        assert_eq!(next_reset_date(date(2028, 1, 31)), date(2028, 2, 29));
        assert_eq!(next_reset_date(date(2026, 12, 15)), date(2027, 1, 15));
    }

    #[test]
    fn ledger_reasons_round_trip_through_their_names() {
        for reason in [
            LedgerReason::MonthlyGrant,
            LedgerReason::PlanChange,
            LedgerReason::Reserve,
            LedgerReason::Refund,
            LedgerReason::Adjustment,
        ] {
            assert_eq!(LedgerReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(LedgerReason::parse("gift"), None);
    }
}
