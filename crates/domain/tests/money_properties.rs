//! Properties of price parsing (CSV cells, WooCommerce and Wix prices, stored JSON): no
//! text panics it, and every price it writes reads back as the same amount.

use domain::Money;
use proptest::prelude::*;

/// The largest amount a price may have: 1,000,000,000 whole units and 99 cents.
const MAX_MINOR: i64 = 1_000_000_000 * 100 + 99;

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,40}") {
        let _ = Money::parse_decimal(&text);
    }

    #[test]
    fn number_shaped_text_never_panics_and_stays_in_range(
        text in "[ +-]?[0-9]{0,25}(\\.[0-9]{0,5})?[ ]?",
    ) {
        if let Ok(money) = Money::parse_decimal(&text) {
            prop_assert!((0..=MAX_MINOR).contains(&money.minor), "{text:?} → {money:?}");
        }
    }

    #[test]
    fn formatted_prices_read_back_the_same(minor in 0..=MAX_MINOR) {
        let money = Money { minor };
        let text = money.to_decimal();
        prop_assert_eq!(Money::parse_decimal(&text), Ok(money));
        let json = serde_json::to_string(&money).unwrap();
        prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
    }

    #[test]
    fn written_prices_read_as_their_value(whole in 0u64..=1_000_000_000, cents in 0u32..100, two_digits in any::<bool>()) {
        let text = if two_digits || cents % 10 != 0 {
            format!("{whole}.{cents:02}")
        } else {
            format!("{whole}.{}", cents / 10)
        };
        let expected = i64::try_from(whole).unwrap() * 100 + i64::from(cents);
        prop_assert_eq!(Money::parse_decimal(&text).map(|m| m.minor), Ok(expected));
        prop_assert_eq!(Money::parse_decimal(&text).unwrap().to_decimal(), format!("{whole}.{cents:02}"));
    }
}
