//! The CloudFormation custom resource's side of the handler: a Create or Update migrates (once
//! per RequestId, even when CloudFormation redelivers it), the rollback of an Update leaves the
//! database alone, and every path answers the ResponseURL before the deadline.

use super::*;

impl Function {
    pub(super) async fn cloudformation(self: Arc<Self>, request: CfnRequest, budget: Budget) -> Result<Value, Diagnostic> {
        let physical_id = self.physical_resource_id();
        let work = budget.reserve(CFN_RESPONSE);
        let answer = match request.request_type {
            // Never drop data: removing the resource (or the stack) leaves the database as it is.
            RequestType::Delete => Answer {
                success: true,
                reason: "Delete leaves the database and its data as they are".into(),
                data: HashMap::new(),
            },
            RequestType::Update if request.is_rollback_of(&self.version) => self.cfn_rollback_update(&request, work).await,
            RequestType::Create | RequestType::Update => match self.answered_here(&request) {
                Some(answer) => answer,
                None => {
                    let this = self.clone();
                    let cfn = request.clone();
                    // The redelivery check reads SSM: under the guard with the run, so a slow read
                    // cannot eat the time kept back for the answer.
                    let running = tokio::spawn(async move {
                        match this.answered_before(&cfn).await {
                            Some(answer) => answer,
                            None => this.cfn_migrate(&cfn, work).await,
                        }
                    });
                    match guard(running, work).await {
                        Guarded::Done(answer) => answer,
                        Guarded::Panicked(message) => {
                            metrics::emit_failure(&self.environment, Some(crate::engine::Action::Migrate), PANICKED);
                            Answer::failed(format!("{PANICKED}: the handler panicked: {message}"))
                        }
                        Guarded::Abandoned => {
                            let error = Error::Deadline { during: "migrating" };
                            metrics::emit_failure(&self.environment, Some(crate::engine::Action::Migrate), error.error_type().as_str());
                            Answer::failed(format!("{}: {error}", error.error_type()))
                        }
                    }
                }
            },
        };
        self.answered
            .lock()
            .expect("not poisoned")
            .insert(request.envelope.request_id.clone(), answer.clone());
        let physical_id = match (request.request_type, &request.envelope.physical_resource_id) {
            (RequestType::Delete, Some(id)) => id.clone(),
            _ => physical_id,
        };
        self.respond(&request.envelope, physical_id, &answer, budget).await
    }

    /// PUTs the answer to the ResponseURL and returns its summary to Lambda.
    pub(super) async fn respond(
        &self,
        envelope: &Envelope,
        physical_id: String,
        answer: &Answer,
        budget: Budget,
    ) -> Result<Value, Diagnostic> {
        let body = cfn::response_body(envelope, &physical_id, answer);
        let summary = json!({
            "Status": if answer.success { "SUCCESS" } else { "FAILED" },
            "PhysicalResourceId": physical_id,
            "Reason": answer.reason,
            "Data": answer.data,
        });
        // A Lambda budget always has a deadline; the fallback only keeps the type honest.
        let until = budget
            .abandon_at(answer_grace(self.margin))
            .unwrap_or_else(|| Instant::now() + CFN_RESPONSE);
        match delivery::deliver(&self.http, &envelope.response_url, body, until).await {
            Ok(_) => Ok(summary),
            // Returning an error makes Lambda invoke again, which is the only way left to answer;
            // the RequestId check keeps the retry from migrating twice.
            Err(e) => Err(Diagnostic {
                error_type: "ResponseNotDelivered".into(),
                error_message: e.to_string(),
            }),
        }
    }

    async fn cfn_migrate(&self, request: &CfnRequest, budget: Budget) -> Answer {
        let command = Command::Migrate {
            target: None,
            dry_run: request.dry_run,
        };
        let mut result = self.run(command, budget).await;
        if request.request_type == RequestType::Update {
            if let Err(failure) = &result {
                if failure.error.error_type() == ErrorType::UnknownMigrations {
                    // A stack rollback redeploys the previous function with fewer migrations while the
                    // database keeps the newer ones: report, never roll the schema back from here.
                    if let Ok(mut status) = self.run(Command::Status, budget).await {
                        if status.pending.is_empty() {
                            status
                                .warnings
                                .push("the database is ahead of this build (a stack rollback?); schema left as it is".into());
                            result = Ok(status);
                        }
                    }
                }
            }
        }
        if !request.dry_run {
            let report = match &mut result {
                Ok(report) => report,
                Err(failure) => &mut failure.report,
            };
            self.record(report, Some(&request.envelope.request_id), None).await;
        }
        metrics::emit(report_of(&result), Invoker::CloudFormation);
        match result {
            Ok(report) => Answer {
                success: true,
                reason: success_reason(&report),
                data: data(&report),
            },
            Err(failure) => {
                let mut answer = Answer::failed(match &failure.report.in_progress {
                    Some(left) => in_progress_reason(&failure.error, left),
                    None => reason_of(&failure.error),
                });
                answer.data = data(&failure.report);
                answer
            }
        }
    }

    /// A stack rollback's Update: the schema is never rolled back (or re-migrated) from here, so
    /// the answer is the database's current state.
    async fn cfn_rollback_update(&self, request: &CfnRequest, budget: Budget) -> Answer {
        let requested = request.function_version.as_deref().unwrap_or("?");
        let result = self.run(Command::Status, budget).await;
        metrics::emit(report_of(&result), Invoker::CloudFormation);
        match result {
            Ok(report) => Answer {
                success: true,
                reason: format!(
                    "stack rollback (requested function version {requested}, running {}): schema left as it is; current: {}",
                    self.version,
                    report.current.as_deref().unwrap_or("none")
                ),
                data: data(&report),
            },
            // Failing here would leave the stack in UPDATE_ROLLBACK_FAILED for a read we could not
            // make; the rollback itself changes nothing in the database.
            Err(failure) => Answer {
                success: true,
                reason: format!(
                    "stack rollback: schema left as it is; its state could not be read ({})",
                    reason_of(&failure.error)
                ),
                data: data(&failure.report),
            },
        }
    }

    /// The answer already given to this RequestId by this container, or (`answered_before`,
    /// through the SSM state) by another one: a redelivered request is answered the same, not
    /// migrated twice.
    fn answered_here(&self, request: &CfnRequest) -> Option<Answer> {
        self.answered
            .lock()
            .expect("not poisoned")
            .get(&request.envelope.request_id)
            .cloned()
    }

    async fn answered_before(&self, request: &CfnRequest) -> Option<Answer> {
        let setup = self.setup.as_ref().ok()?;
        let state = setup.state.read().await.ok()??;
        if state.cfn_request_id.as_deref() != Some(request.envelope.request_id.as_str()) {
            return None;
        }
        let mut data = HashMap::new();
        data.insert("Current".into(), state.current.clone().unwrap_or_default());
        data.insert("AppliedCount".into(), state.applied_count.to_string());
        data.insert("RunId".into(), state.run_id.clone());
        let failed = state.status == Status::Failed || state.error.is_some();
        Some(if failed {
            Answer {
                success: false,
                reason: state
                    .error
                    .as_ref()
                    .map_or_else(|| "failed".to_string(), |e| format!("{}: {}", e.error_type, e.message)),
                data,
            }
        } else {
            Answer {
                success: true,
                reason: format!(
                    "already answered this request (run {}); current: {}",
                    state.run_id,
                    state.current.as_deref().unwrap_or("none")
                ),
                data,
            }
        })
    }

    /// Stable for one environment and database, and free of secrets: changing it would make
    /// CloudFormation delete the old resource.
    pub(super) fn physical_resource_id(&self) -> String {
        let identity: Vec<String> = ["DB_SECRET_ID", "DATABASE_URL", "DB_HOST", "DB_PORT", "DB_NAME"]
            .iter()
            .map(|k| match (*k, self.lookup(k)) {
                ("DATABASE_URL", Some(url)) => ConnectionSettings::from_url("DATABASE_URL", &url)
                    .map(|c| c.info().to_string())
                    .unwrap_or_default(),
                (_, v) => v.unwrap_or_default(),
            })
            .collect();
        let digest = hex::encode(Sha256::digest(identity.join("\n").as_bytes()));
        format!("wishlist-migrator-{}-{}", self.environment, &digest[..12])
    }
}
