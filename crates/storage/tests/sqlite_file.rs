//! The SQLite database file holds sessions, encrypted store keys and every catalog: it is
//! created readable by its owner only.

use std::os::unix::fs::PermissionsExt;

#[tokio::test]
async fn a_new_database_file_is_private_to_its_owner() {
    let db = testkit::TestDatabase::sqlite();
    let storage = storage::connect(db.url(), 2).await.unwrap();
    // Write something so SQLite creates its write-ahead log beside the file.
    storage.sync_plans(&domain::default_plans()).await.unwrap();
    let path = db.url().trim_start_matches("sqlite://").to_owned();
    let path = std::path::Path::new(&path);
    for file in [path.to_path_buf(), path.with_extension("db-wal")] {
        let Ok(metadata) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = metadata.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", file.display());
    }
    assert!(path.exists(), "{}", path.display());
}
