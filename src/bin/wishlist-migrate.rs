//! `wishlist-migrate`: the command-line edge. Parses flags over the environment, calls the
//! library's run loop, prints the report and maps it to the documented exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wishlist_migrator::aws::state::{EnvironmentState, StateStore};
use wishlist_migrator::config::{self, process_env};
use wishlist_migrator::engine::budget::Budget;
use wishlist_migrator::engine::progress::PROGRESS;
use wishlist_migrator::engine::rollback_plan::RollbackTarget;
use wishlist_migrator::report::progress::ProgressLines;
use wishlist_migrator::{Action, Classified, Command, ConnectionSettings, Invocation, MigrationSource, Report, RunSettings, TlsMode};

#[derive(Parser)]
#[command(
    name = "wishlist-migrate",
    version,
    about = "Apply drizzle-kit migrations to PostgreSQL safely, keeping drizzle-orm's ledger"
)]
struct Cli {
    /// PostgreSQL URL [env: DATABASE_URL, or PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE]
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// drizzle-kit output folder; default: the migrations built into this binary [env: MIGRATIONS_DIR]
    #[arg(long = "migrations", global = true, value_name = "DIR")]
    migrations: Option<PathBuf>,
    /// Environment name for reports and state [env: APP_ENV] [default: dev]
    #[arg(long = "env", global = true, value_name = "NAME")]
    environment: Option<String>,
    /// Print exactly one JSON report on stdout
    #[arg(long, global = true)]
    json: bool,
    /// Go on despite ledger rows that match no journal entry [env: ALLOW_UNKNOWN_MIGRATIONS]
    #[arg(long, global = true)]
    allow_unknown_migrations: bool,
    /// drizzle-kit 1.0 folders: apply a pending folder that sorts before an applied one, as
    /// drizzle-orm 1.0 does [env: ALLOW_OUT_OF_ORDER]
    #[arg(long, global = true)]
    allow_out_of_order: bool,
    /// Give up waiting for another run's lock after this long [env: LOCK_WAIT_SECONDS] [default: 30]
    #[arg(long, global = true, value_name = "SECONDS")]
    lock_wait: Option<u64>,
    /// End the run within this long: statements are cancelled at the deadline, and a run stuck on
    /// a connection that stopped answering is abandoned shortly after it [env: RUN_TIMEOUT_SECONDS]
    #[arg(long, global = true, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// After `migrate` or `rollback`, write the environment's state to SSM Parameter Store (${SSM_PREFIX}/state)
    #[arg(long, global = true)]
    record: bool,
    /// Allow a lint finding for this run without editing its (already applied) file: TAG:RULE,
    /// repeatable [env: LINT_ALLOW, comma-separated]
    #[arg(long = "allow-finding", global = true, value_name = "TAG:RULE")]
    allow_finding: Vec<String>,
    /// Apply despite blocking lint findings (listed as warnings), e.g. to rebuild an environment
    /// from an old history [env: LINT_GATE=false]
    #[arg(long, global = true)]
    no_lint_gate: bool,
    /// From this many rows a scan or rewrite of a live table blocks (lint, plan, migrate)
    /// [env: LINT_LARGE_TABLE_ROWS] [default: 100000]
    #[arg(long, global = true, value_name = "ROWS")]
    large_table_rows: Option<u64>,
    /// Run a statement the lint gate finds blocking on a large live table by its lock-safe
    /// recipe instead of refusing it (`plan --online` prints the steps) [env: ONLINE_MIGRATIONS]
    #[arg(long, global = true)]
    online: bool,
    /// No progress lines on stderr (one per migration as it applies; the report is unchanged)
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
    Github,
}

#[derive(Subcommand)]
enum Cmd {
    /// Applied and pending migrations, and every problem between the ledger and the files
    Status,
    /// What `migrate` would do, changing nothing
    Plan {
        #[arg(long, value_name = "TAG")]
        to: Option<String>,
    },
    /// Apply pending migrations
    Migrate {
        /// Stop after this migration
        #[arg(long, value_name = "TAG")]
        to: Option<String>,
        /// Show the plan and change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Find changes made to the database outside its migrations, and where drizzle-kit's snapshot
    /// disagrees with what the migrations build
    Drift {
        /// Also fail (exit 3, ModelMismatch) when the snapshot and the migrations disagree
        #[arg(long)]
        strict: bool,
    },
    /// Drift, plus enum values, index validity and the plans of the hot queries (verify/queries.sql)
    Verify {
        /// Also run EXPLAIN (ANALYZE, BUFFERS) under the normal planner and report the timings
        #[arg(long)]
        analyze: bool,
    },
    /// Undo the applied migrations newer than TAG with their down files (<tag>.down.sql; 1.0: <folder>/down.sql), in one transaction
    Rollback {
        /// The migration to keep as the newest applied one; `none` rolls back every migration
        #[arg(long, value_name = "TAG")]
        to: String,
        /// Show the statements and the data at risk, and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Go on although the down files drop tables or columns that hold data
        #[arg(long)]
        allow_data_loss: bool,
    },
    /// On a scratch database: apply, roll back, compare and re-apply every migration in turn
    CheckRollback,
    /// The deploy gate: exit 0 when TAG and every migration before it are applied, else exit 3
    /// (SchemaBehind) naming what is missing
    Require {
        #[arg(long, value_name = "TAG")]
        version: String,
    },
    /// Where every environment stands: the state each one publishes in SSM, against these migrations
    Envs {
        /// Where the environments' states live: <prefix>/<env>/migrations/state
        #[arg(long, default_value = "/wishlist")]
        prefix: String,
        /// Also write a self-contained HTML page with each environment's runs over time
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// An AWS profile to read (repeat it for environments in other accounts); default: the
        /// default credentials
        #[arg(long, value_name = "NAME")]
        profile: Vec<String>,
    },
    /// The schema-evolution policy over the migrations (docs/schema-evolution.md): exit 3 on an
    /// error-level finding without a waiver. With a database configured, only the pending
    /// migrations, against the live tables' sizes
    Lint {
        /// Only the migrations after this one (older files predate the policy)
        #[arg(long, value_name = "TAG")]
        since: Option<String>,
        /// Lint every migration without connecting, even with a database configured
        #[arg(long)]
        offline: bool,
    },
    /// A pull request's gate, without a database (docs/ci.md): drizzle-kit's team-workflow
    /// traps in the migrations folder (duplicate prefixes, `when` going backwards, entries and
    /// files without each other, snapshot chains that fork or break, released migrations changed)
    /// and the lint of the migrations the change adds. Exit 3 on any error, 0 when clean
    Check {
        /// What the change is compared with: a git ref (origin/main) or a folder holding the
        /// migrations as released
        #[arg(long, value_name = "REF|DIR")]
        base: Option<String>,
        /// text, json (one object, as --json) or github (GitHub Actions annotations)
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// One command over many databases (--targets FILE: a JSON array of {"name", "databaseUrl" |
    /// "secretArn", "env"?, "wave"?}), each run as the single-database command runs it; `migrate`
    /// runs a canary first. Exit 0 when no target failed, 1 when some failed within
    /// --max-failures, 3 when the canary failed or the tolerance was exceeded
    Fleet {
        #[command(subcommand)]
        command: FleetCmd,
    },
    /// The runs recorded in the history table, newest first
    History {
        #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
    },
}

#[derive(Subcommand)]
enum FleetCmd {
    /// Every target's applied and pending migrations
    Status(FleetArgs),
    /// What `fleet migrate` would do on every target, changing nothing
    Plan(FleetArgs),
    /// Apply the pending migrations to every target: the canary first, then the rest
    Migrate(FleetArgs),
}

#[derive(clap::Args)]
struct FleetArgs {
    /// The targets manifest (docs/deploy.md, "Fleet from a laptop or CI")
    #[arg(long, value_name = "FILE")]
    targets: PathBuf,
    /// At most this many databases open (and runs under way) at once
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
    /// migrate: the first N targets of the first wave run first, one at a time; if one fails,
    /// nothing else starts [default: 1 when the fleet has more than one target]
    #[arg(long, value_name = "N")]
    canary: Option<usize>,
    /// migrate: how many targets may fail (N, or P% of the fleet) before no new target starts
    #[arg(long, value_name = "N|P%", default_value = "0")]
    max_failures: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    use tracing_subscriber::prelude::*;
    let logs = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let progress = tracing_subscriber::filter::Targets::new().with_target(PROGRESS, tracing::Level::INFO);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour codes only where a person reads them: CI logs and CloudWatch show them raw.
                .with_ansi(std::io::stderr().is_terminal() && process_env("NO_COLOR").is_none())
                .with_filter(logs),
        )
        // A fleet's runs interleave: it prints a line per target instead (fleet::run's callback).
        .with((!cli.quiet && !matches!(cli.command, Cmd::Fleet { .. })).then_some(ProgressLines.with_filter(progress)))
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Cmd::Envs { prefix, html, profile } = &cli.command {
        return runtime.block_on(envs(&cli, prefix, html.as_deref(), profile));
    }
    if let Cmd::Fleet { command } = &cli.command {
        return runtime.block_on(fleet(&cli, command));
    }
    let report = runtime.block_on(async {
        let mut report = execute(&cli).await;
        if cli.record && matches!(report.action, Action::Plan | Action::Migrate) {
            let aws = wishlist_migrator::aws::sdk_config(None).await;
            let prefix = state_prefix(&report.environment);
            wishlist_migrator::aws::envs::warn_about_durations(&aws_sdk_ssm::Client::new(&aws), &prefix, &mut report).await;
        }
        let changes_schema = matches!(report.action, Action::Migrate | Action::Rollback);
        if cli.record && changes_schema && !report.dry_run {
            record(&mut report).await;
        }
        report
    });
    let format = match &cli.command {
        Cmd::Check { format, .. } => *format,
        _ => Format::Text,
    };
    if format == Format::Github {
        let folder = cli
            .migrations
            .clone()
            .or_else(|| process_env("MIGRATIONS_DIR").map(PathBuf::from))
            .unwrap_or_default();
        print!("{}", report.render_github(&folder.display().to_string()));
        if let Some(error) = report.render_error() {
            eprintln!("{error}");
        }
    } else if cli.json || format == Format::Json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.render_human());
        if let Some(error) = report.render_error() {
            eprintln!("{error}");
        }
    }
    ExitCode::from(report.exit_code() as u8)
}

async fn execute(cli: &Cli) -> Report {
    let mut command = match &cli.command {
        Cmd::Status => Command::Status,
        Cmd::Plan { to } => Command::Plan { target: to.clone() },
        Cmd::Migrate { to, dry_run } => Command::Migrate {
            target: to.clone(),
            dry_run: *dry_run,
        },
        // On the command line drift is always a failure (exit 3), so scripts can gate on it.
        Cmd::Drift { strict } => Command::Drift {
            fail_on_drift: true,
            strict: *strict,
        },
        Cmd::Verify { analyze } => Command::Verify { analyze: *analyze },
        Cmd::Require { version } => Command::Require { version: version.clone() },
        Cmd::History { limit } => Command::History { limit: *limit },
        Cmd::Rollback {
            to,
            dry_run,
            allow_data_loss,
        } => Command::Rollback {
            target: RollbackTarget::parse(to),
            dry_run: *dry_run,
            allow_data_loss: *allow_data_loss,
        },
        Cmd::CheckRollback => Command::CheckRollback,
        Cmd::Lint { since, offline } => Command::Lint {
            since: since.clone(),
            live: !offline,
        },
        Cmd::Check { base, .. } => Command::Check { base: base.clone() },
        Cmd::Envs { .. } => unreachable!("main runs envs before the engine"),
        Cmd::Fleet { .. } => unreachable!("main runs a fleet before the engine"),
    };
    // check never connects, even with a database configured: a pull request's CI has none.
    let configured = if matches!(command, Command::Check { .. }) {
        configure_offline(cli)
    } else {
        configure(cli)
    };
    let (settings, connection) = match configured {
        Ok(pair) => pair,
        // Linting needs no database: without one it reads the folder alone.
        Err(config::ConfigError::NoDatabase) if matches!(command, Command::Lint { .. }) => match configure_offline(cli) {
            Ok(pair) => {
                if let Command::Lint { live, .. } = &mut command {
                    *live = false;
                }
                pair
            }
            Err(e) => return Report::refused(command.action(), "dev", &e),
        },
        Err(e) => {
            let environment = cli
                .environment
                .clone()
                .or_else(|| process_env("APP_ENV"))
                .unwrap_or_else(|| "dev".into());
            return Report::refused(command.action(), &environment, &e);
        }
    };
    let source = MigrationSource::from(settings.migrations_dir.as_deref());
    let invoker = format!("cli:{}", process_env("USER").unwrap_or_else(|| "unknown".into()));
    let invocation = Invocation {
        command,
        settings: &settings,
        connection: &connection,
        source: &source,
        invoker: &invoker,
        budget: Budget::of_timeout(settings.run_timeout),
    };
    match wishlist_migrator::run(&invocation).await {
        Ok(report) => report,
        Err(failure) => failure.report,
    }
}

/// `envs` reads AWS, not the database: it is not a run of the engine.
async fn envs(cli: &Cli, prefix: &str, html: Option<&std::path::Path>, profiles: &[String]) -> ExitCode {
    use wishlist_migrator::aws::envs;
    let dir = cli.migrations.clone().or_else(|| process_env("MIGRATIONS_DIR").map(PathBuf::from));
    let local = match MigrationSource::from(dir.as_deref()).load() {
        Ok(set) => set,
        Err(e) => return fail(&format!("error[InvalidMigrations]: {e}"), 3),
    };
    let published = match envs::read_profiles(profiles, prefix, html.is_some()).await {
        Ok(published) => published,
        Err((profile, e)) => return fail(&format!("error (profile {profile}): {e}"), 1),
    };
    let view = envs::view(&published, &local);
    if let Some(path) = html {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        if let Err(e) = std::fs::write(path, envs::html(&view, &now)) {
            return fail(&format!("error[ConfigError]: cannot write {}: {e}", path.display()), 2);
        }
    }
    if cli.json {
        println!("{}", serde_json::json!(view));
    } else {
        let color = std::io::stdout().is_terminal() && process_env("NO_COLOR").is_none();
        print!("{}", envs::table(&view, color));
    }
    ExitCode::SUCCESS
}

/// Each target is one run of the engine; the fleet's own report replaces theirs.
async fn fleet(cli: &Cli, command: &FleetCmd) -> ExitCode {
    use wishlist_migrator::fleet::{self, FleetCommand, FleetRun, Policy, Tolerance};
    let (command, args) = match command {
        FleetCmd::Status(args) => (FleetCommand::Status, args),
        FleetCmd::Plan(args) => (FleetCommand::Plan, args),
        FleetCmd::Migrate(args) => (FleetCommand::Migrate, args),
    };
    let refuse = |e: &dyn Classified| fail(&format!("error[{}]: {e}", e.error_type()), e.exit_code() as u8);
    let settings = match run_settings(cli) {
        Ok(settings) => settings,
        Err(e) => return refuse(&e),
    };
    let (targets, tolerance) = match (fleet::read_manifest(&args.targets), Tolerance::parse(&args.max_failures)) {
        (Ok(targets), Ok(tolerance)) => (targets, tolerance),
        (Err(e), _) | (_, Err(e)) => return refuse(&e),
    };
    let source = MigrationSource::from(settings.migrations_dir.as_deref());
    let invoker = format!("cli:{}", process_env("USER").unwrap_or_else(|| "unknown".into()));
    let run = FleetRun {
        command,
        targets: &targets,
        policy: Policy {
            concurrency: usize::from(args.concurrency),
            canary: args.canary,
            tolerance: Some(tolerance),
        },
        settings: &settings,
        source: &source,
        invoker: &invoker,
        env: &process_env,
        record: cli.record,
    };
    let report = fleet::run(&run, |target| {
        if !cli.quiet {
            let error = target.error.as_ref().map(|e| format!(" ({})", e.error_type)).unwrap_or_default();
            eprintln!(
                "fleet: {} {}{error} in {} ms",
                target.name,
                target.status.as_str(),
                target.duration_ms
            );
        }
    })
    .await;
    if cli.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.render_text());
    }
    ExitCode::from(report.exit_code())
}

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(code)
}

fn state_prefix(environment: &str) -> String {
    match RunSettings::from_env(&process_env) {
        Ok(mut settings) => {
            settings.environment = environment.to_string();
            settings.state_prefix()
        }
        Err(_) => config::default_state_prefix(environment),
    }
}

/// The same SSM state the Lambda writes, so a laptop or CI run is visible too.
async fn record(report: &mut Report) {
    let prefix = state_prefix(&report.environment);
    let aws = wishlist_migrator::aws::sdk_config(None).await;
    let store = StateStore::new(aws_sdk_ssm::Client::new(&aws), &prefix);
    let state = EnvironmentState::from_report(report, "cli", time::OffsetDateTime::now_utc());
    if let Err(e) = store.record(state).await {
        report.warnings.push(format!("{e}; the database ledger is unaffected"));
    }
}

fn configure(cli: &Cli) -> Result<(RunSettings, ConnectionSettings), config::ConfigError> {
    let settings = run_settings(cli)?;
    let connection = match &cli.database_url {
        Some(url) => {
            let mut c = ConnectionSettings::from_url("--database-url", url)?;
            c.apply_tls_env(&process_env, TlsMode::Prefer)?;
            c
        }
        None => ConnectionSettings::from_env(&process_env, TlsMode::Prefer)?,
    };
    Ok((settings, connection))
}

/// `lint` without a database: the connection settings are never used.
fn configure_offline(cli: &Cli) -> Result<(RunSettings, ConnectionSettings), config::ConfigError> {
    let unused = ConnectionSettings::new(tokio_postgres::Config::new(), TlsMode::Disable);
    Ok((run_settings(cli)?, unused))
}

fn run_settings(cli: &Cli) -> Result<RunSettings, config::ConfigError> {
    let mut settings = RunSettings::from_env(&process_env)?;
    for allowance in &cli.allow_finding {
        settings
            .lint_allow
            .push(config::LintAllowance::parse("--allow-finding", allowance)?);
    }
    if let Some(rows) = cli.large_table_rows {
        settings.large_table_rows = rows;
    }
    if cli.no_lint_gate {
        settings.lint_gate = false;
    }
    if cli.online {
        settings.online = true;
    }
    if let Some(dir) = &cli.migrations {
        settings.migrations_dir = Some(dir.clone());
    }
    if let Some(name) = &cli.environment {
        settings.environment = config::validate_environment(name)?;
    }
    if cli.allow_unknown_migrations {
        settings.allow_unknown_rows = true;
    }
    if cli.allow_out_of_order {
        settings.allow_out_of_order = true;
    }
    if let Some(seconds) = cli.timeout {
        settings.run_timeout = Some(config::run_timeout("--timeout", seconds)?);
    }
    if let Some(seconds) = cli.lock_wait {
        settings.lock_wait = std::time::Duration::from_secs(seconds);
    }
    Ok(settings)
}
