//! A stream's Kinesis source as the build opens it: the stream checked (faults at start waited
//! out), its records fed by polling or enhanced fan-out, its checkpoints in files or in a lease
//! table shared by a fleet.

use super::*;

impl Build<'_> {
    /// A Kinesis source: the stream checked, its checkpoints (files or the lease table), the
    /// memory log that tells them what was delivered.
    pub(super) async fn open_kinesis(
        &self,
        k: &KinesisSourceSpec,
    ) -> Result<(Log, Option<KinesisStart>), BuildError> {
        let config = &self.builder.config;
        let sdk = self
            .sdk
            .expect("the SDK configuration is loaded for every Kinesis source (needs_aws)");
        let endpoint = k
            .endpoint_url
            .as_deref()
            .or(config.aws.endpoint_url.as_deref());
        let client = aws::kinesis_client(sdk, endpoint);
        // The SDK's standard variables override the endpoint too.
        let local = endpoint.is_some()
            || ["AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL"]
                .iter()
                .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
        let checked = patiently(
            "Kinesis stream",
            || kinesis::check_stream(&client, &k.stream, local),
            KinesisError::is_transient,
        )
        .await
        .map_err(|source| BuildError::Kinesis {
            stream: self.sc.name.clone(),
            source,
        })?;
        let feed = self.feed(&client, k, checked.arn.as_deref()).await?;
        let dir = config
            .state_dir
            .join("checkpoints")
            .join(&self.sc.name)
            .join(k.stream.name());
        let loading = self.state_error("loading checkpoints from", dir.clone());
        let checkpoints = Arc::new(Checkpoints::load(&dir).map_err(loading)?);
        let (origin, first_start) = checkpoints
            .origin(k.starting_position, crate::record::now_ms())
            .map_err(self.state_error("recording the origin in", dir))?;
        let first_start_latest = first_start && k.starting_position == StartingPosition::Latest;
        let (mode, leases) = self
            .kinesis_mode(sdk, k, checkpoints, origin, first_start_latest)
            .await?;
        let progress: Arc<dyn ShardProgress> = match &mode {
            kinesis::Mode::Files { checkpoints, .. } => checkpoints.clone(),
            kinesis::Mode::Leases(m) => m.progress(),
        };
        let memory = MemoryLog::new(
            self.sc.destinations.len(),
            (k.max_buffered_mib * 1024 * 1024) as usize,
            progress,
        );
        let start = KinesisStart {
            client,
            config: crate::spec::KinesisSourceSpec {
                stream: checked.stream,
                ..k.clone()
            },
            memory: memory.clone(),
            origin,
            mode,
            leases,
            feed,
        };
        Ok((Log::Memory(memory), Some(start)))
    }

    /// Polling, or (with `enhanced_fan_out`) the registered consumer, found or registered and
    /// ACTIVE now, so that a consumer that cannot be had fails the start with its reason.
    async fn feed(
        &self,
        client: &aws_sdk_kinesis::Client,
        k: &KinesisSourceSpec,
        stream_arn: Option<&str>,
    ) -> Result<kinesis::Feed, BuildError> {
        let Some(f) = &k.enhanced_fan_out else {
            return Ok(kinesis::Feed::Poll);
        };
        let fail = |source| BuildError::FanOut {
            stream: self.sc.name.clone(),
            source,
        };
        let arn = stream_arn.ok_or_else(|| fail(kinesis::fan_out::FanOutError::NoStreamArn))?;
        let consumer = kinesis::fan_out::consumer(client, arn, &f.consumer_name, CONSUMER_PATIENCE)
            .await
            .map_err(fail)?;
        Ok(kinesis::Feed::FanOut {
            consumer: consumer.into(),
        })
    }

    /// Files, or (with `leases`) the lease manager on its table, made ready (created when
    /// asked) now so that a missing or unreachable table fails the start with its reason.
    async fn kinesis_mode(
        &self,
        sdk: &aws_config::SdkConfig,
        k: &KinesisSourceSpec,
        checkpoints: Arc<Checkpoints>,
        origin: kinesis::checkpoint::Origin,
        first_start_latest: bool,
    ) -> Result<(kinesis::Mode, Option<Arc<LeaseMetrics>>), BuildError> {
        let Some(l) = &k.leases else {
            let files = kinesis::Mode::Files {
                checkpoints,
                first_start_latest,
            };
            return Ok((files, None));
        };
        let failover = Duration::from_secs(l.failover_seconds);
        let endpoint =
            l.endpoint_url
                .as_deref()
                .or(self.builder.config.aws.endpoint_url.as_deref());
        let client = aws::dynamodb_client(sdk, endpoint, failover);
        let table = LeaseStore::Dynamo(LeaseTable::new(client, l.table.clone()));
        // A DynamoDB fault at start is waited out; a missing table (without create_table) or
        // one that never becomes ACTIVE is not.
        patiently(
            "lease table",
            || table.ensure(l.create_table),
            |e| matches!(e, TableError::Call(_)),
        )
        .await
        .map_err(|source| BuildError::Leases {
            stream: self.sc.name.clone(),
            source,
        })?;
        let metrics = Arc::new(LeaseMetrics::default());
        let me = l.worker_id.clone().unwrap_or_else(default_worker_id);
        tracing::info!(stream = %self.sc.name, table = %l.table, worker = %me, "sharing the stream's shards through the lease table");
        let manager = Manager::new(LeaseSetup {
            table,
            me,
            failover,
            progress: Arc::new(Progress::default()),
            metrics: metrics.clone(),
            files: checkpoints,
            origin,
        });
        Ok((kinesis::Mode::Leases(Box::new(manager)), Some(metrics)))
    }
}

/// An instance's name in the lease table when `worker_id` is not set: the host name and the
/// process id (the KCL's default is similar: unique per running process).
fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "firehosed".to_string());
    format!("{host}-{}", std::process::id())
}
