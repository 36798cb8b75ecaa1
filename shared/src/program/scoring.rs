//! Fraud scoring of a captured click, at constant cost: the user agent on its own (at capture),
//! and one per-IP counter for the brand (clicks this hour, last sighting; kept by the stream
//! function), never a query over past clicks.

use crate::brand_data::SourceHit;
use crate::clock::UnixMillis;
use crate::config::ConfigError;

/// Score of a click from a bot or crawler user agent: flagged on its own.
pub const BOT_USER_AGENT_SCORE: u8 = 90;
/// Score of a click beyond the per-IP hourly limit: flagged on its own.
pub const SOURCE_VELOCITY_SCORE: u8 = 90;
/// Score of a click from an IP seen moments before: suspicious, flagged only with another finding.
pub const SOURCE_REPEAT_SCORE: u8 = 50;

/// Lowercase fragments of user agents that automation announces.
const BOT_MARKERS: [&str; 24] = [
    "bot",
    "crawl",
    "spider",
    "slurp",
    "headless",
    "phantomjs",
    "selenium",
    "puppeteer",
    "playwright",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "httpclient",
    "go-http-client",
    "okhttp",
    "java/",
    "libwww-perl",
    "scrapy",
    "axios/",
    "node-fetch",
    "facebookexternalhit",
    "preview",
];

/// What one source of capture traffic is counted as: its IPv4 address, or its IPv6 /64 (one
/// subscriber's usual allocation, so a visitor cannot step around the budget within it).
pub fn source_of(client_ip: &str) -> String {
    match client_ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(address)) if address.to_ipv4_mapped().is_none() => {
            let prefix = u128::from(address) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
        Ok(std::net::IpAddr::V6(address)) => address
            .to_ipv4_mapped()
            .map_or_else(|| address.to_string(), |v4| v4.to_string()),
        Ok(std::net::IpAddr::V4(address)) => address.to_string(),
        Err(_) => client_ip.to_owned(),
    }
}

/// One thing that looked wrong about a click, stored as a fraud signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: &'static str,
    pub score: u8,
    pub detail: String,
    /// Whether this click raises a fraud-signal item; a finding already raised for the source
    /// this hour only scores the click.
    pub raises_signal: bool,
}

/// What the scoring rules need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub source_clicks_per_hour: u32,
    pub repeat_window_ms: i64,
}

/// More clicks than this from one IP in an hour are flagged.
pub const SOURCE_CLICKS_PER_HOUR_VAR: &str = "TRCKER_CAPTURE_IP_CLICKS_PER_HOUR";
/// A click from an IP seen less than this many seconds before raises a repeat signal.
pub const REPEAT_WINDOW_VAR: &str = "TRCKER_CAPTURE_REPEAT_WINDOW_SECONDS";

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            source_clicks_per_hour: 50,
            repeat_window_ms: 60_000,
        }
    }
}

impl Thresholds {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The thresholds the variables set (each unset or empty one at its default); an error
    /// names the variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let number = |name: &'static str, default: u32, max: u32| {
            crate::config::bounded_u32(&lookup, name, default, 1, max)
        };
        let defaults = Self::default();
        Ok(Self {
            source_clicks_per_hour: number(
                SOURCE_CLICKS_PER_HOUR_VAR,
                defaults.source_clicks_per_hour,
                1_000_000,
            )?,
            repeat_window_ms: i64::from(number(
                REPEAT_WINDOW_VAR,
                u32::try_from(defaults.repeat_window_ms / 1000).unwrap_or(60),
                3_600,
            )?) * 1000,
        })
    }
}

/// A bot or crawler user agent (or none at all).
pub fn user_agent_finding(user_agent: &str) -> Option<Finding> {
    let lower = user_agent.trim().to_ascii_lowercase();
    let marker = if lower.is_empty() || lower == "unknown" {
        Some("no user agent")
    } else {
        BOT_MARKERS
            .iter()
            .copied()
            .find(|marker| lower.contains(marker))
    }?;
    Some(Finding {
        kind: "bot_user_agent",
        score: BOT_USER_AGENT_SCORE,
        detail: format!("the user agent looks automated ({marker:?})"),
        raises_signal: true,
    })
}

/// Findings from the source IP's counter: too many clicks this hour, or a repeat within the window.
pub fn source_findings(
    source_ip: &str,
    hit: SourceHit,
    now: UnixMillis,
    thresholds: Thresholds,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let limit = u64::from(thresholds.source_clicks_per_hour);
    let over_limit = hit.clicks_in_window > limit;
    if over_limit {
        findings.push(Finding {
            kind: "source_velocity",
            score: SOURCE_VELOCITY_SCORE,
            detail: format!(
                "{source_ip} sent {} clicks this hour; the limit is {limit}",
                hit.clicks_in_window
            ),
            // One signal per source and hour: the click that crosses the limit.
            raises_signal: hit.clicks_in_window == limit + 1,
        });
    }
    if let Some(previous) = hit.previous_at {
        let gap = now - previous;
        if (0..thresholds.repeat_window_ms).contains(&gap) {
            findings.push(Finding {
                kind: "source_repeat",
                score: SOURCE_REPEAT_SCORE,
                detail: format!(
                    "{source_ip} sent another click {:.1} s before",
                    gap as f64 / 1000.0
                ),
                // Beyond the hourly limit the velocity signal already covers this source.
                raises_signal: !over_limit,
            });
        }
    }
    findings
}

/// The click's score: the findings added up, at most 100.
pub fn score(findings: &[Finding]) -> u8 {
    let total: u32 = findings
        .iter()
        .map(|finding| u32::from(finding.score))
        .sum();
    u8::try_from(total.min(100)).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    const THRESHOLDS: Thresholds = Thresholds {
        source_clicks_per_hour: 3,
        repeat_window_ms: 60_000,
    };

    #[test]
    fn thresholds_from_variables() {
        assert_eq!(
            Thresholds::from_lookup(|_| None).unwrap(),
            Thresholds::default()
        );
        let set =
            Thresholds::from_lookup(|name| (name == REPEAT_WINDOW_VAR).then(|| "30".to_owned()))
                .unwrap();
        assert_eq!(set.repeat_window_ms, 30_000);
        let error = Thresholds::from_lookup(|name| {
            (name == SOURCE_CLICKS_PER_HOUR_VAR).then(|| "0".to_owned())
        })
        .unwrap_err();
        assert!(error.to_string().contains(SOURCE_CLICKS_PER_HOUR_VAR));
    }

    #[test]
    fn bots_are_recognised_and_browsers_are_not() {
        for agent in [
            "Googlebot/2.1 (+http://www.google.com/bot.html)",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/131.0 Safari/537.36",
            "curl/8.5.0",
            "python-requests/2.32",
            "",
            "unknown",
        ] {
            assert!(user_agent_finding(agent).is_some(), "{agent}");
        }
        for agent in [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
        ] {
            assert_eq!(user_agent_finding(agent), None, "{agent}");
        }
    }

    #[test]
    fn source_counters_score_velocity_once_per_hour_and_repeats() {
        let hit = |clicks, previous| SourceHit {
            clicks_in_window: clicks,
            previous_at: previous,
        };
        assert!(source_findings("ip", hit(1, None), 1_000_000, THRESHOLDS).is_empty());
        // Seen 2 minutes before: no repeat.
        assert!(source_findings("ip", hit(2, Some(880_000)), 1_000_000, THRESHOLDS).is_empty());
        let repeat = source_findings("ip", hit(2, Some(990_000)), 1_000_000, THRESHOLDS);
        assert_eq!(repeat.len(), 1);
        assert_eq!(
            (repeat[0].kind, repeat[0].raises_signal),
            ("source_repeat", true)
        );
        assert_eq!(score(&repeat), 50);
        let crossing = source_findings("ip", hit(4, None), 1_000_000, THRESHOLDS);
        assert_eq!(crossing[0].kind, "source_velocity");
        assert!(
            crossing[0].raises_signal,
            "the click that crosses the limit raises it"
        );
        let beyond = source_findings("ip", hit(5, Some(999_000)), 1_000_000, THRESHOLDS);
        assert_eq!(beyond.len(), 2);
        assert!(beyond.iter().all(|finding| !finding.raises_signal));
        assert_eq!(score(&beyond), 100, "capped");
    }
}
