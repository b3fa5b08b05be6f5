//! The contract every lease store keeps (DynamoDB in the KCL's shape, memory), one suite run
//! over each: the unit tests run it on memory, tests/e2e/contracts.rs on DynamoDB (moto). A lease
//! is created once; every change holds only on the counter (and owner) it was read at, and
//! moves the counter on; a stolen lease waits for its holder's last checkpoint; journal writes
//! hold only in their tenure; only a finished lease is deleted.

use super::{LeaseStore, Position, TableError};

/// A scenario of the contract that a store broke.
#[derive(Debug, thiserror::Error)]
#[error("{scenario}: {what}")]
pub struct LeaseContractError {
    scenario: &'static str,
    what: String,
}

fn broke(scenario: &'static str, what: impl Into<String>) -> LeaseContractError {
    LeaseContractError {
        scenario,
        what: what.into(),
    }
}

/// Runs the contract on a DynamoDB lease table (tests/e2e/contracts.rs: moto on loopback).
pub async fn dynamodb(endpoint: &str, table: &str) -> Result<(), LeaseContractError> {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "contract", "contract", None, None, "contract",
        ))
        .load()
        .await;
    let client =
        crate::aws::dynamodb_client(&sdk, Some(endpoint), std::time::Duration::from_secs(10));
    let store = LeaseStore::Dynamo(super::LeaseTable::new(client, table.to_string()));
    store
        .ensure(true)
        .await
        .map_err(|e| broke("the table is made", e.to_string()))?;
    all(&store).await
}

/// Every scenario, on `store` (which holds no lease yet).
pub(crate) async fn all(store: &LeaseStore) -> Result<(), LeaseContractError> {
    created_once(store).await?;
    changes_hold_on_their_counter(store).await?;
    a_stolen_lease_waits_for_its_holders_checkpoint(store).await?;
    journals_hold_in_their_tenure(store).await?;
    only_a_finished_lease_is_deleted(store).await
}

/// What a call answered, as the scenario expects it: Ok, or a Conflict.
fn expect<T>(
    scenario: &'static str,
    what: &str,
    got: Result<T, TableError>,
    conflict: bool,
) -> Result<(), LeaseContractError> {
    match (got, conflict) {
        (Ok(_), false) | (Err(TableError::Conflict), true) => Ok(()),
        (Ok(_), true) => Err(broke(scenario, format!("{what} held; it must not"))),
        (Err(e), _) => Err(broke(scenario, format!("{what}: {e}"))),
    }
}

async fn lease(
    store: &LeaseStore,
    scenario: &'static str,
    key: &str,
) -> Result<super::Lease, LeaseContractError> {
    store
        .get(key)
        .await
        .map_err(|e| broke(scenario, e.to_string()))?
        .ok_or_else(|| broke(scenario, format!("{key} is not there")))
}

async fn created_once(store: &LeaseStore) -> Result<(), LeaseContractError> {
    let scenario = "a lease is created once, unowned, where it starts";
    let first = store.create("shard-a", &[], &Position::TrimHorizon).await;
    let parents = ["shard-a".to_string()];
    let second = store.create("shard-a", &parents, &Position::Latest).await;
    match (first, second) {
        (Ok(true), Ok(false)) => {}
        other => return Err(broke(scenario, format!("answered {other:?}"))),
    }
    let l = lease(store, scenario, "shard-a").await?;
    if l.owner.is_some() || l.counter != 0 || l.checkpoint != Position::TrimHorizon {
        return Err(broke(scenario, format!("{l:?}")));
    }
    store
        .create(
            "shard-b",
            &parents,
            &Position::AtTimestamp(1_700_000_000_000),
        )
        .await
        .map_err(|e| broke(scenario, e.to_string()))?;
    let b = lease(store, scenario, "shard-b").await?;
    let scanned = store
        .scan()
        .await
        .map_err(|e| broke(scenario, e.to_string()))?;
    match (b.parents == parents, scanned.len()) {
        (true, 2) => Ok(()),
        _ => Err(broke(scenario, format!("{b:?}, {} leases", scanned.len()))),
    }
}

async fn changes_hold_on_their_counter(store: &LeaseStore) -> Result<(), LeaseContractError> {
    let scenario = "a change holds only on the counter and owner it was read at";
    let seen = lease(store, scenario, "shard-a").await?;
    expect(
        scenario,
        "taking an unowned lease",
        store.take(&seen, "w1", false).await,
        false,
    )?;
    expect(
        scenario,
        "a second take at the same counter",
        store.take(&seen, "w2", false).await,
        true,
    )?;
    let l = lease(store, scenario, "shard-a").await?;
    if l.owner.as_deref() != Some("w1") || l.counter != 1 || l.owner_switches != 1 {
        return Err(broke(scenario, format!("after the take: {l:?}")));
    }
    expect(
        scenario,
        "a renewal by another owner",
        store.renew("shard-a", "w2", 1).await,
        true,
    )?;
    expect(
        scenario,
        "a renewal at a stale counter",
        store.renew("shard-a", "w1", 0).await,
        true,
    )?;
    expect(
        scenario,
        "the holder's renewal",
        store.renew("shard-a", "w1", 1).await,
        false,
    )?;
    let at = Position::Sequence(
        "49590338271490256608559692538361571095921575989136588898".into(),
        3,
    );
    expect(
        scenario,
        "the holder's checkpoint",
        store.checkpoint("shard-a", "w1", 2, &at).await,
        false,
    )?;
    expect(
        scenario,
        "the holder's release",
        store.release("shard-a", "w1", 3).await,
        false,
    )?;
    let l = lease(store, scenario, "shard-a").await?;
    match (l.owner, l.counter, l.checkpoint, l.owner_switches) {
        (None, 4, c, 0) if c == at => Ok(()),
        other => Err(broke(
            scenario,
            format!("after renew, checkpoint, release: {other:?}"),
        )),
    }
}

async fn a_stolen_lease_waits_for_its_holders_checkpoint(
    store: &LeaseStore,
) -> Result<(), LeaseContractError> {
    let scenario = "a stolen lease carries its holder, who writes the last checkpoint";
    let free = lease(store, scenario, "shard-a").await?;
    expect(
        scenario,
        "w1 takes it",
        store.take(&free, "w1", false).await,
        false,
    )?;
    let held = lease(store, scenario, "shard-a").await?;
    expect(
        scenario,
        "w2 steals it",
        store.take(&held, "w2", true).await,
        false,
    )?;
    let stolen = lease(store, scenario, "shard-a").await?;
    if stolen.owner.as_deref() != Some("w2") || stolen.checkpoint_owner.as_deref() != Some("w1") {
        return Err(broke(scenario, format!("after the steal: {stolen:?}")));
    }
    expect(
        scenario,
        "a hand-over by someone else",
        store.hand_over(&stolen, "w3", None).await,
        true,
    )?;
    let last = Position::Sequence("7".into(), 0);
    expect(
        scenario,
        "the holder's hand-over",
        store.hand_over(&stolen, "w1", Some(&last)).await,
        false,
    )?;
    let l = lease(store, scenario, "shard-a").await?;
    if l.checkpoint_owner.is_some() || l.checkpoint != last || l.owner.as_deref() != Some("w2") {
        return Err(broke(scenario, format!("after the hand-over: {l:?}")));
    }
    expect(
        scenario,
        "a second hand-over",
        store.hand_over(&l, "w1", None).await,
        true,
    )?;
    // A steal whose holder never hands over: the new owner clears it.
    expect(
        scenario,
        "w1 steals it back",
        store.take(&l, "w1", true).await,
        false,
    )?;
    let again = lease(store, scenario, "shard-a").await?;
    expect(
        scenario,
        "the new owner gives up waiting",
        store.clear_hand_off("shard-a", "w1", again.counter).await,
        false,
    )?;
    match lease(store, scenario, "shard-a").await?.checkpoint_owner {
        None => Ok(()),
        Some(h) => Err(broke(scenario, format!("still waiting for {h}"))),
    }
}

async fn journals_hold_in_their_tenure(store: &LeaseStore) -> Result<(), LeaseContractError> {
    let scenario = "journal writes hold only in the lease's tenure";
    let l = lease(store, scenario, "shard-a").await?;
    let owner = l.owner.clone().unwrap_or_default();
    expect(
        scenario,
        "a tenure by a non-owner",
        store.set_tenure("shard-a", "nobody", l.counter, "t0").await,
        true,
    )?;
    expect(
        scenario,
        "the owner's tenure",
        store.set_tenure("shard-a", &owner, l.counter, "t1").await,
        false,
    )?;
    expect(
        scenario,
        "a write in the tenure",
        store.write_journal("shard-a", 0, "t1", "line 1\n").await,
        false,
    )?;
    expect(
        scenario,
        "a write of an older tenure",
        store.write_journal("shard-a", 0, "t0", "stale\n").await,
        true,
    )?;
    expect(
        scenario,
        "a write for another destination",
        store.write_journal("shard-a", 1, "t1", "d1\n").await,
        false,
    )?;
    let read = store
        .journal("shard-a", 0)
        .await
        .map_err(|e| broke(scenario, e.to_string()))?;
    let missing = store
        .journal("shard-none", 0)
        .await
        .map_err(|e| broke(scenario, e.to_string()))?;
    match (read, missing) {
        (Some((l, text)), None) if text == "line 1\n" && l.tenure.as_deref() == Some("t1") => {
            Ok(())
        }
        other => Err(broke(scenario, format!("read back {other:?}"))),
    }
}

async fn only_a_finished_lease_is_deleted(store: &LeaseStore) -> Result<(), LeaseContractError> {
    let scenario = "only a finished lease is deleted";
    expect(
        scenario,
        "deleting a lease being read",
        store.delete_finished("shard-a").await,
        true,
    )?;
    let l = lease(store, scenario, "shard-a").await?;
    let owner = l.owner.clone().unwrap_or_default();
    expect(
        scenario,
        "finishing it",
        store
            .checkpoint("shard-a", &owner, l.counter, &Position::ShardEnd)
            .await,
        false,
    )?;
    if !lease(store, scenario, "shard-a").await?.finished() {
        return Err(broke(scenario, "its checkpoint is not SHARD_END"));
    }
    expect(
        scenario,
        "deleting it once finished",
        store.delete_finished("shard-a").await,
        false,
    )?;
    match store.get("shard-a").await {
        Ok(None) => Ok(()),
        other => Err(broke(scenario, format!("after the delete: {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_keeps_the_lease_store_contract() {
        let store = LeaseStore::Memory(std::sync::Arc::default());
        all(&store).await.expect("the contract");
    }
}
