//! Structured JSON logs on stdout, the format CloudWatch and the Lambda JSON log format expect.
//! `RUST_LOG` sets the level: a level, or `target=level` pairs, comma-separated (default `info`).

use tracing::Level;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// At debug and trace the runtime crates log whole events, headers included (Authorization!):
/// they stay at info or quieter whatever `RUST_LOG` says.
const RUNTIME_TARGETS: [&str; 3] = ["lambda_runtime", "lambda_runtime_api_client", "lambda_http"];

/// The MCP SDK logs its per-message lifecycle at info: three lines per stateless request ("serve
/// finished", "input stream terminated", ...), which cost the MCP route about 15% of its
/// throughput and would triple its CloudWatch volume. It logs at warn unless `RUST_LOG` names it.
const MCP_SDK_TARGET: &str = "rmcp";

/// The filter for a `RUST_LOG` value, and a note when the value was not understood (the filter is
/// then `info`). Span and field filters (`[span{field=value}]`) are not supported: plain targets
/// and levels need no regular-expression engine in every binary.
pub fn log_filter(rust_log: Option<&str>) -> (Targets, Option<String>) {
    let default = || Targets::new().with_default(LevelFilter::INFO);
    let (mut filter, problem) = match rust_log.map(str::trim).filter(|spec| !spec.is_empty()) {
        None => (default(), None),
        Some(spec) => match spec.parse::<Targets>() {
            Ok(filter) => (filter, None),
            Err(error) => (
                default(),
                Some(format!(
                    "RUST_LOG {spec:?} is not a level or target=level list ({error}): logging at info"
                )),
            ),
        },
    };
    for target in RUNTIME_TARGETS {
        if filter.would_enable(target, &Level::DEBUG) {
            filter = filter.with_target(target, LevelFilter::INFO);
        }
    }
    let mcp_sdk_named = filter
        .iter()
        .any(|(target, _)| target.split("::").next() == Some(MCP_SDK_TARGET));
    if !mcp_sdk_named && filter.would_enable(MCP_SDK_TARGET, &Level::INFO) {
        filter = filter.with_target(MCP_SDK_TARGET, LevelFilter::WARN);
    }
    (filter, problem)
}

/// Installs the global subscriber once; later calls are ignored.
pub fn init_json_logging() {
    let (filter, problem) = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let installed = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(false),
        )
        .with(filter)
        .try_init()
        .is_ok();
    if let (true, Some(problem)) = (installed, problem) {
        tracing::warn!("{problem}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enables(filter: &Targets, target: &str, level: Level) -> bool {
        filter.would_enable(target, &level)
    }

    #[test]
    fn default_is_info() {
        for value in [None, Some(""), Some("  ")] {
            let (filter, problem) = log_filter(value);
            assert!(problem.is_none());
            assert!(enables(&filter, "trcker_shared", Level::INFO));
            assert!(!enables(&filter, "trcker_shared", Level::DEBUG));
        }
    }

    #[test]
    fn levels_and_targets_apply_but_runtime_crates_stay_at_info() {
        let (filter, problem) = log_filter(Some("trace"));
        assert!(problem.is_none());
        assert!(enables(&filter, "trcker_shared::edge", Level::TRACE));
        for target in RUNTIME_TARGETS {
            assert!(enables(&filter, target, Level::INFO), "{target}");
            assert!(!enables(&filter, target, Level::DEBUG), "{target}");
        }
        // Naming a runtime crate explicitly does not lift the cap either.
        let (filter, _) = log_filter(Some("warn,lambda_http=trace,trcker_mcp=debug"));
        assert!(!enables(&filter, "lambda_http", Level::DEBUG));
        assert!(enables(&filter, "lambda_http", Level::INFO));
        assert!(enables(&filter, "trcker_mcp", Level::DEBUG));
        assert!(!enables(&filter, "trcker_shared", Level::INFO));
        assert!(enables(&filter, "trcker_shared", Level::WARN));
        // Quieter than info stays quieter.
        let (filter, _) = log_filter(Some("error"));
        assert!(!enables(&filter, "lambda_runtime", Level::WARN));
    }

    #[test]
    fn the_mcp_sdk_logs_at_warn_unless_named() {
        for value in [None, Some("info"), Some("debug,trcker_mcp=trace")] {
            let (filter, _) = log_filter(value);
            assert!(!enables(&filter, "rmcp::service", Level::INFO), "{value:?}");
            assert!(enables(&filter, "rmcp::service", Level::WARN), "{value:?}");
        }
        let (filter, _) = log_filter(Some("warn,rmcp=debug"));
        assert!(enables(&filter, "rmcp::service", Level::DEBUG));
        let (filter, _) = log_filter(Some("info,rmcp::transport=info"));
        assert!(enables(&filter, "rmcp::transport", Level::INFO));
        // Quieter than warn stays quieter.
        let (filter, _) = log_filter(Some("error"));
        assert!(!enables(&filter, "rmcp::service", Level::WARN));
    }

    #[test]
    fn a_value_not_understood_falls_back_to_info_with_a_note() {
        let (filter, problem) = log_filter(Some("trcker=loud"));
        assert!(problem.unwrap().contains("trcker=loud"));
        assert!(enables(&filter, "trcker_shared", Level::INFO));
        assert!(!enables(&filter, "trcker_shared", Level::DEBUG));
    }
}
