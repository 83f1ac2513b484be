//! Leadership across processes: two storages opened on one database stand for two
//! processes; exactly one leads, and the other takes over once the leader is gone.

use chrono::{Duration, Utc};
use testkit::TestDatabase;

async fn only_one_of_two_processes_leads(db: TestDatabase) {
    let first = storage::connect(db.url(), 3).await.unwrap();
    let second = storage::connect(db.url(), 3).await.unwrap();
    let ttl = Duration::seconds(30);
    let now = Utc::now();
    assert!(first
        .try_lead("scheduler", "process-a", ttl, now)
        .await
        .unwrap());
    assert!(
        first
            .try_lead("scheduler", "process-a", ttl, now)
            .await
            .unwrap(),
        "the leader keeps leading"
    );
    assert!(!second
        .try_lead("scheduler", "process-b", ttl, now)
        .await
        .unwrap());
    assert!(
        second
            .try_lead("other-task", "process-b", ttl, now)
            .await
            .unwrap(),
        "leaderships are per name"
    );
    first.resign_lead("scheduler", "process-a").await.unwrap();
    assert!(second
        .try_lead("scheduler", "process-b", ttl, now)
        .await
        .unwrap());
    assert!(!first
        .try_lead("scheduler", "process-a", ttl, now)
        .await
        .unwrap());
}

#[tokio::test]
async fn sqlite_one_leader() {
    only_one_of_two_processes_leads(TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn sqlite_lease_expires_when_the_leader_stops_renewing() {
    let db = TestDatabase::sqlite();
    let first = storage::connect(db.url(), 2).await.unwrap();
    let second = storage::connect(db.url(), 2).await.unwrap();
    let ttl = Duration::seconds(30);
    let now = Utc::now();
    assert!(first.try_lead("scheduler", "a", ttl, now).await.unwrap());
    assert!(!second
        .try_lead("scheduler", "b", ttl, now + Duration::seconds(29))
        .await
        .unwrap());
    assert!(second
        .try_lead("scheduler", "b", ttl, now + Duration::seconds(31))
        .await
        .unwrap());
}

#[tokio::test]
async fn postgres_one_leader() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    only_one_of_two_processes_leads(db).await;
}

#[tokio::test]
async fn postgres_leadership_ends_with_the_leaders_connection() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let second = storage::connect(db.url(), 2).await.unwrap();
    {
        let first = storage::connect(db.url(), 2).await.unwrap();
        assert!(first
            .try_lead("scheduler", "a", Duration::seconds(30), Utc::now())
            .await
            .unwrap());
        assert!(!second
            .try_lead("scheduler", "b", Duration::seconds(30), Utc::now())
            .await
            .unwrap());
        // The leader process goes away: its pool and its lock session close.
    }
    let mut led = false;
    for _ in 0..50 {
        if second
            .try_lead("scheduler", "b", Duration::seconds(30), Utc::now())
            .await
            .unwrap()
        {
            led = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(led, "the lock is released when the leader's session ends");
}
