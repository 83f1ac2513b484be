//! Price parsing: any text parses or is refused without a panic, and what parses writes
//! back to text that parses to the same amount.
#![no_main]

use domain::Money;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(money) = Money::parse_decimal(text) {
        assert!(money.minor >= 0);
        assert_eq!(Money::parse_decimal(&money.to_decimal()), Ok(money));
    }
    let _ = serde_json::from_str::<Money>(text);
});
