//! Structured JSON logs on stdout, the format CloudWatch and the Lambda JSON log format expect.
//! `RUST_LOG` sets the level (default `info`).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls are ignored.
pub fn init_json_logging() {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // At debug/trace the runtime crates log whole events, headers included (Authorization!):
    // they stay at info whatever RUST_LOG says.
    for quiet in [
        "lambda_runtime=info",
        "lambda_runtime_api_client=info",
        "lambda_http=info",
    ] {
        if let Ok(directive) = quiet.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .try_init();
}
