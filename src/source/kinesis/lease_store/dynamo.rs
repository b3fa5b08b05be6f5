//! The lease table in DynamoDB, in the shape of the Kinesis Client Library's (one item per
//! shard, keyed `leaseKey` = shard id; <https://docs.aws.amazon.com/streams/latest/dev/kcl-dynamoDB.html>),
//! so operators recognise it. Every change is a conditional write on `leaseCounter` (and the
//! owner it expects), and every write that changes ownership or the checkpoint increments the
//! counter: two instances can never both succeed on the same counter, so they can never both
//! believe they hold a shard.

use std::collections::HashMap;

use super::{Lease, Position, TableError};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};

const KEY: &str = "leaseKey";
/// firehosed's attributes beside the KCL's: the tenure of the lease, and per destination the
/// exactly-once journal of the shard's objects (JSON lines, as in a journal file).
const TENURE: &str = "firehosedTenure";
const JOURNAL: &str = "firehosedJournal";

fn call_error<E, R>(e: SdkError<E, R>) -> TableError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(se) = &e
        && se.err().code() == Some("ConditionalCheckFailedException")
    {
        return TableError::Conflict;
    }
    TableError::Call(DisplayErrorContext(&e).to_string())
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A change of one lease: what it sets, what it removes, on which condition.
struct Change {
    condition: String,
    set: Vec<&'static str>,
    remove: Vec<&'static str>,
    values: Vec<(&'static str, AttributeValue)>,
}

impl Change {
    /// Conditional on the counter (and, when `owner` is Some, on that owner; None: on no owner),
    /// and increments it.
    fn on(counter: u64, owner: Option<&str>) -> Change {
        let mut c = Change {
            condition: "leaseCounter = :counter".into(),
            set: vec!["leaseCounter = :next"],
            remove: Vec::new(),
            values: vec![(":counter", n(counter)), (":next", n(counter + 1))],
        };
        match owner {
            Some(o) => {
                c.condition.push_str(" AND leaseOwner = :owner");
                c.values.push((":owner", s(o)));
            }
            None => c
                .condition
                .push_str(" AND attribute_not_exists(leaseOwner)"),
        }
        c
    }

    fn checkpoint(mut self, at: &Position) -> Change {
        let (text, sub) = position_text(at);
        self.set.extend([
            "checkpoint = :ck",
            "checkpointSubSequenceNumber = :sub",
            "ownerSwitchesSinceCheckpoint = :zero",
        ]);
        self.values
            .extend([(":ck", s(&text)), (":sub", n(sub)), (":zero", n(0))]);
        self
    }
}

fn position_text(at: &Position) -> (String, u64) {
    match at {
        Position::TrimHorizon => ("TRIM_HORIZON".into(), 0),
        Position::Latest => ("LATEST".into(), 0),
        Position::AtTimestamp(_) => ("AT_TIMESTAMP".into(), 0),
        Position::Sequence(seq, sub) => (seq.clone(), *sub),
        Position::ShardEnd => ("SHARD_END".into(), 0),
    }
}

#[derive(Clone)]
pub(crate) struct LeaseTable {
    client: Client,
    name: String,
}

impl LeaseTable {
    pub(crate) fn new(client: Client, name: String) -> LeaseTable {
        LeaseTable { client, name }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The table exists (created, on-demand, when `create` and it does not) and is ACTIVE.
    pub(crate) async fn ensure(&self, create: bool) -> Result<(), TableError> {
        let waited = Duration::from_secs(120);
        let deadline = tokio::time::Instant::now() + waited;
        let mut created = false;
        loop {
            match self
                .client
                .describe_table()
                .table_name(&self.name)
                .send()
                .await
            {
                Ok(out) => {
                    let status = out.table().and_then(|t| t.table_status());
                    if matches!(status, Some(TableStatus::Active) | None) {
                        return Ok(());
                    }
                }
                Err(SdkError::ServiceError(se))
                    if se.err().is_resource_not_found_exception() && !create =>
                {
                    return Err(TableError::Missing(self.name.clone()));
                }
                Err(SdkError::ServiceError(se))
                    if se.err().is_resource_not_found_exception() && !created =>
                {
                    self.create_table().await?;
                    created = true;
                    tracing::info!(table = %self.name, "created the lease table");
                    continue;
                }
                Err(e) => return Err(call_error(e)),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(TableError::NotActive {
                    table: self.name.clone(),
                    waited,
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn create_table(&self) -> Result<(), TableError> {
        fn built<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, TableError> {
            r.map_err(|e| TableError::Call(e.to_string()))
        }
        let result = self
            .client
            .create_table()
            .table_name(&self.name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(built(
                AttributeDefinition::builder()
                    .attribute_name(KEY)
                    .attribute_type(ScalarAttributeType::S)
                    .build(),
            )?)
            .key_schema(built(
                KeySchemaElement::builder()
                    .attribute_name(KEY)
                    .key_type(KeyType::Hash)
                    .build(),
            )?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Another instance created it first.
            Err(SdkError::ServiceError(se)) if se.err().is_resource_in_use_exception() => Ok(()),
            Err(e) => Err(call_error(e)),
        }
    }

    /// Every item, read consistently.
    pub(crate) async fn scan(&self) -> Result<Vec<Lease>, TableError> {
        let mut leases = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.name)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(call_error)?;
            for item in out.items() {
                leases.push(parse(item)?);
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(leases),
            }
        }
    }

    /// One item, read consistently; None when it does not exist.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Lease>, TableError> {
        self.item(key).await?.as_ref().map(parse).transpose()
    }

    /// One item's attributes, read consistently.
    async fn item(&self, key: &str) -> Result<Option<HashMap<String, AttributeValue>>, TableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(KEY, s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(call_error)?;
        Ok(out.item)
    }

    /// A new item, unowned, unless one exists (false then).
    pub(crate) async fn create(
        &self,
        key: &str,
        parents: &[String],
        at: &Position,
    ) -> Result<bool, TableError> {
        let (text, sub) = position_text(at);
        let mut req = self
            .client
            .put_item()
            .table_name(&self.name)
            .item(KEY, s(key))
            .item("leaseCounter", n(0))
            .item("checkpoint", s(&text))
            .item("checkpointSubSequenceNumber", n(sub))
            .item("ownerSwitchesSinceCheckpoint", n(0))
            .condition_expression("attribute_not_exists(leaseKey)");
        if !parents.is_empty() {
            req = req.item("parentShardId", AttributeValue::Ss(parents.to_vec()));
        }
        if let Position::AtTimestamp(ms) = at {
            req = req.item("startingTimestampMillis", AttributeValue::N(ms.to_string()));
        }
        match req.send().await.map_err(call_error) {
            Ok(_) => Ok(true),
            Err(TableError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn apply(&self, key: &str, change: Change) -> Result<(), TableError> {
        let mut expr = format!("SET {}", change.set.join(", "));
        if !change.remove.is_empty() {
            expr.push_str(&format!(" REMOVE {}", change.remove.join(", ")));
        }
        let mut req = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(KEY, s(key))
            .update_expression(expr)
            .condition_expression(change.condition);
        for (name, value) in change.values {
            req = req.expression_attribute_values(name, value);
        }
        req.send().await.map_err(call_error).map(|_| ())
    }

    /// Renews a lease this instance holds at `counter`.
    pub(crate) async fn renew(&self, key: &str, me: &str, counter: u64) -> Result<(), TableError> {
        self.apply(key, Change::on(counter, Some(me))).await
    }

    /// Takes a lease seen at `counter` with owner `from` (None: unowned). `hand_off`: the
    /// holder is alive and must write its last checkpoint first (`checkpointOwner`).
    pub(crate) async fn take(
        &self,
        lease: &Lease,
        me: &str,
        hand_off: bool,
    ) -> Result<(), TableError> {
        let mut change = Change::on(lease.counter, lease.owner.as_deref());
        change.set.extend([
            "leaseOwner = :me",
            "ownerSwitchesSinceCheckpoint = :switches",
        ]);
        change
            .values
            .extend([(":me", s(me)), (":switches", n(lease.owner_switches + 1))]);
        if let (true, Some(holder)) = (hand_off, &lease.owner) {
            change.set.push("checkpointOwner = :holder");
            change.values.push((":holder", s(holder)));
        }
        self.apply(&lease.key, change).await
    }

    /// Moves the checkpoint of a lease this instance holds at `counter`.
    pub(crate) async fn checkpoint(
        &self,
        key: &str,
        me: &str,
        counter: u64,
        at: &Position,
    ) -> Result<(), TableError> {
        self.apply(key, Change::on(counter, Some(me)).checkpoint(at))
            .await
    }

    /// The last checkpoint of a lease handed off to another instance (`checkpointOwner` is
    /// this instance), which clears `checkpointOwner`: the new owner starts reading from it.
    pub(crate) async fn hand_over(
        &self,
        lease: &Lease,
        me: &str,
        at: Option<&Position>,
    ) -> Result<(), TableError> {
        let owner = lease.owner.as_deref();
        let mut change = Change::on(lease.counter, owner);
        if let Some(at) = at {
            change = change.checkpoint(at);
        }
        change.condition.push_str(" AND checkpointOwner = :me");
        change.values.push((":me", s(me)));
        change.remove.push("checkpointOwner");
        self.apply(&lease.key, change).await
    }

    /// The new owner gives up waiting for the previous holder's last checkpoint.
    pub(crate) async fn clear_hand_off(
        &self,
        key: &str,
        me: &str,
        counter: u64,
    ) -> Result<(), TableError> {
        let mut change = Change::on(counter, Some(me));
        change.remove.push("checkpointOwner");
        self.apply(key, change).await
    }

    /// Gives a lease up (owner removed): another instance takes it at once.
    pub(crate) async fn release(
        &self,
        key: &str,
        me: &str,
        counter: u64,
    ) -> Result<(), TableError> {
        let mut change = Change::on(counter, Some(me));
        change.remove.push("leaseOwner");
        self.apply(key, change).await
    }

    /// Starts a tenure of a lease this instance holds at `counter`: from now on only journal
    /// writes under `tenure` succeed.
    pub(crate) async fn set_tenure(
        &self,
        key: &str,
        me: &str,
        counter: u64,
        tenure: &str,
    ) -> Result<(), TableError> {
        let mut change = Change::on(counter, Some(me));
        change.set.push("firehosedTenure = :tenure");
        change.values.push((":tenure", s(tenure)));
        self.apply(key, change).await
    }

    /// Destination `destination`'s journal of a shard's objects, and the lease, read
    /// consistently (None: no item).
    pub(crate) async fn journal(
        &self,
        key: &str,
        destination: usize,
    ) -> Result<Option<(Lease, String)>, TableError> {
        let Some(item) = self.item(key).await? else {
            return Ok(None);
        };
        let text = item
            .get(&format!("{JOURNAL}{destination}"))
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        Ok(Some((parse(&item)?, text)))
    }

    /// Replaces destination `destination`'s journal of a shard, on the condition that the
    /// lease is still in `tenure` (Conflict: it is not; nothing was written). Leaves the lease
    /// counter alone: renewals go on undisturbed.
    pub(crate) async fn write_journal(
        &self,
        key: &str,
        destination: usize,
        tenure: &str,
        text: &str,
    ) -> Result<(), TableError> {
        self.client
            .update_item()
            .table_name(&self.name)
            .key(KEY, s(key))
            .update_expression("SET #journal = :journal")
            .condition_expression("firehosedTenure = :tenure")
            .expression_attribute_names("#journal", format!("{JOURNAL}{destination}"))
            .expression_attribute_values(":journal", s(text))
            .expression_attribute_values(":tenure", s(tenure))
            .send()
            .await
            .map_err(call_error)
            .map(|_| ())
    }

    /// Deletes a finished shard's item (its children are being read).
    pub(crate) async fn delete_finished(&self, key: &str) -> Result<(), TableError> {
        self.client
            .delete_item()
            .table_name(&self.name)
            .key(KEY, s(key))
            .condition_expression("checkpoint = :end")
            .expression_attribute_values(":end", s("SHARD_END"))
            .send()
            .await
            .map_err(call_error)
            .map(|_| ())
    }
}

fn parse(item: &HashMap<String, AttributeValue>) -> Result<Lease, TableError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    let key = text(KEY).ok_or(TableError::Malformed {
        key: String::new(),
        what: "no leaseKey string",
    })?;
    let malformed = |what| TableError::Malformed {
        key: key.clone(),
        what,
    };
    let counter = number("leaseCounter").ok_or_else(|| malformed("no leaseCounter number"))?;
    let sub = number("checkpointSubSequenceNumber").unwrap_or(0).max(0) as u64;
    let checkpoint = match text("checkpoint").as_deref() {
        None | Some("TRIM_HORIZON") => Position::TrimHorizon,
        Some("LATEST") => Position::Latest,
        Some("SHARD_END") => Position::ShardEnd,
        Some("AT_TIMESTAMP") => Position::AtTimestamp(
            number("startingTimestampMillis")
                .ok_or_else(|| malformed("AT_TIMESTAMP without startingTimestampMillis"))?,
        ),
        Some(seq) if !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()) => {
            Position::Sequence(seq.to_string(), sub)
        }
        Some(_) => {
            return Err(malformed(
                "checkpoint is not a sequence number or a sentinel",
            ));
        }
    };
    let parents = match item.get("parentShardId") {
        Some(AttributeValue::Ss(v)) => v.clone(),
        Some(AttributeValue::S(v)) => vec![v.clone()],
        _ => Vec::new(),
    };
    Ok(Lease {
        owner: text("leaseOwner"),
        counter: counter.max(0) as u64,
        checkpoint,
        owner_switches: number("ownerSwitchesSinceCheckpoint").unwrap_or(0).max(0) as u64,
        parents,
        checkpoint_owner: text("checkpointOwner"),
        tenure: text(TENURE),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_parse_in_the_kcl_shape() {
        let item: HashMap<String, AttributeValue> = [
            (KEY, s("shardId-000000000002")),
            ("leaseOwner", s("host-1")),
            ("leaseCounter", n(7)),
            (
                "checkpoint",
                s("49590338271490256608559692538361571095921575989136588898"),
            ),
            ("checkpointSubSequenceNumber", n(3)),
            ("ownerSwitchesSinceCheckpoint", n(1)),
            (
                "parentShardId",
                AttributeValue::Ss(vec!["shardId-000000000000".into()]),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let lease = parse(&item).expect("a lease");
        assert_eq!(lease.owner.as_deref(), Some("host-1"));
        assert_eq!(lease.counter, 7);
        assert_eq!(
            lease.checkpoint,
            Position::Sequence(
                "49590338271490256608559692538361571095921575989136588898".into(),
                3
            )
        );
        assert_eq!(lease.parents, vec!["shardId-000000000000".to_string()]);
        let mut bad = item.clone();
        bad.insert("checkpoint".into(), s("somewhere"));
        assert!(matches!(parse(&bad), Err(TableError::Malformed { .. })));
        bad.remove("leaseCounter");
        assert!(matches!(parse(&bad), Err(TableError::Malformed { .. })));
    }

    #[test]
    fn every_change_is_conditional_on_the_counter_and_increments_it() {
        let c = Change::on(4, Some("me")).checkpoint(&Position::ShardEnd);
        assert_eq!(
            c.condition,
            "leaseCounter = :counter AND leaseOwner = :owner"
        );
        assert!(c.set.contains(&"leaseCounter = :next"));
        assert!(c.values.contains(&(":next", n(5))));
        let unowned = Change::on(0, None);
        assert!(
            unowned
                .condition
                .ends_with("attribute_not_exists(leaseOwner)")
        );
    }
}
