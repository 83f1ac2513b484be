//! Catalog CSV import: any file must import, reject rows or fail as a whole without a
//! panic, and every rejected row must name a line of the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(import) = connectors::csv::parse_catalog(data, "USD") {
        let lines = data.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        for rejected in &import.rejected {
            assert!(
                (1..=lines).contains(&rejected.line),
                "line {} of {lines}",
                rejected.line
            );
        }
        // What was imported exports and imports again.
        let exported = connectors::csv::export_woocommerce(&import.products);
        let again = connectors::csv::parse_catalog(&exported, "USD").expect("an export imports");
        assert_eq!(again.products.len(), import.products.len());
    }
});
