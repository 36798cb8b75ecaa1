//! Key-leak probes over the whole edge (public API, capture and MCP behind the local gateway,
//! `trcker_local::gateway`, as `trcker-local` serves them): a key put
//! where the adversarial review found it slipping past redaction (a path, percent-encoded or
//! straddling the audited length, an MCP tool name straddling its cut, a capture landing URL and
//! user agent straddling theirs, an offer reference the 422 quotes) leaves nothing of 20 or more
//! of its characters in any answer, stored record or log line, decoded or not. Its own test binary:
//! it captures this process's logs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use trcker_capture::config::CaptureConfig;
use trcker_mcp::config::McpConfig;
use trcker_shared::brand_data::clicks::ClickFilter;
use trcker_shared::brand_data::memory::MemoryBrandData;
use trcker_shared::brand_data::{ActivityFilter, BrandDataStore};
use trcker_shared::clock::SystemClock;
use trcker_shared::edge::config::EdgeLimits;
use trcker_shared::ids::BrandId;
use trcker_shared::keys::KeyService;
use trcker_shared::store::memory::MemoryStore;
use trcker_shared::testing::{LogCapture, create_capture_references, key_shaped_strings};

struct Edge {
    router: Router,
    data: Arc<dyn BrandDataStore>,
    brand_id: BrandId,
    /// The brand's own key, which authenticates every probe.
    key: String,
}

impl Edge {
    async fn new() -> Self {
        let keys = Arc::new(KeyService::with_insecure_dev_pepper(
            Arc::new(MemoryStore::new()),
            Arc::new(SystemClock),
        ));
        let data: Arc<dyn BrandDataStore> = Arc::new(MemoryBrandData::new());
        let limits = EdgeLimits {
            rate_limit_per_minute: 1_000_000,
            ..EdgeLimits::default()
        };
        let mcp = McpConfig {
            allowed_hosts: vec!["localhost".into()],
        };
        let router = trcker_local::gateway(
            keys.clone(),
            data.clone(),
            limits,
            CaptureConfig::default(),
            mcp,
        );
        let brand_id = BrandId::parse("leaky").unwrap();
        keys.create_brand(&brand_id, "Leaky").await.unwrap();
        create_capture_references(data.as_ref(), &brand_id).await;
        let key = keys.generate(&brand_id, None).await.unwrap();
        Self {
            router,
            data,
            brand_id,
            key: key.key.expose_secret().to_owned(),
        }
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        user_agent: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> (StatusCode, String) {
        // The gateway fills the request context itself: the user agent from its header (one
        // that is not visible ASCII reaches the function as the header, read UTF-8 and escaped),
        // the source IP from the "socket". It answers loopback `Host`s only.
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("user-agent", user_agent)
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "application/json");
        if !headers.iter().any(|(name, _)| *name == "host") {
            builder = builder.header("host", "localhost");
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .extension(ConnectInfo(SocketAddr::from(([203, 0, 113, 50], 40_000))))
            .body(body.map_or_else(Body::empty, Body::from))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 4 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Everything stored for the brand, as text.
    async fn stored_text(&self) -> String {
        let activity = self
            .data
            .list_activity(&self.brand_id, ActivityFilter::default(), 500, None)
            .await
            .unwrap();
        let clicks = self
            .data
            .list_clicks(&self.brand_id, &ClickFilter::default(), 100, None)
            .await
            .unwrap();
        let mut text = serde_json::to_string(&activity.items).unwrap();
        for click in clicks.items {
            text.push_str(&serde_json::to_string(&*click).unwrap());
        }
        text
    }
}

/// Nothing of 20 or more characters of `key`, as it is or percent-decoded, nor any key material.
fn assert_no_key(haystack: &str, key: &str, what: &str) {
    let decoded: String = form_urlencoded::parse(format!("x={haystack}").as_bytes())
        .map(|(_, value)| value.into_owned())
        .collect();
    for start in 0..=key.len() - 20 {
        let window = &key[start..start + 20];
        assert!(
            !haystack.contains(window) && !decoded.contains(window),
            "{what} holds {window}: {}",
            haystack
                .lines()
                .chain(decoded.lines())
                .find(|line| line.contains(window))
                .unwrap_or_default()
        );
    }
    assert!(
        key_shaped_strings(haystack).is_empty(),
        "{what}: {:?}",
        key_shaped_strings(haystack)
    );
}

fn encoded(text: &str) -> String {
    text.bytes().map(|byte| format!("%{byte:02x}")).collect()
}

fn mcp_call(name: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
           "params": {"name": name, "arguments": {}}})
    .to_string()
}

#[tokio::test]
async fn a_key_in_caller_text_survives_nowhere() {
    // As deployed: RUST_LOG=trace for everything the functions' filter lets through. Naming the
    // MCP SDK (`rmcp=trace`) would log its own verbatim copy of each request (README, Logs).
    let logs = LogCapture::install_global_as_deployed();
    let edge = Edge::new().await;
    // A second key: the leaked one, pasted into caller text (the probes' own key authenticates).
    let leaked = trcker_shared::token::generate_key().unwrap();
    let leaked = leaked.expose_secret().to_owned();
    let mcp_headers = [
        ("host", "localhost"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let agent = "Mozilla/5.0";

    // Paths: refused before anything is stored, in every spelling and at every cut position.
    let mut paths = vec![
        format!("/api/public/partners/{leaked}"),
        format!("/api/public/partners/%74k_{}", &leaked[3..]),
        format!("/api/public/partners/{}", encoded(&leaked)),
        format!("/api/public/{}", &leaked[..30]),
    ];
    for offset in [470, 480, 490, 500, 505] {
        paths.push(format!("/api/public/{}{leaked}", "a".repeat(offset)));
    }
    for path in &paths {
        let (status, body) = edge.send(Method::GET, path, agent, &[], None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(body.contains("credentials_in_url"), "{body}");
        assert_no_key(&body, &leaked, "a path refusal");
    }

    // The MCP tool name, at every position around the audited 64 characters.
    for offset in [0, 30, 40, 50, 60] {
        let name = format!("{}{leaked}", "t".repeat(offset));
        let (_, body) = edge
            .send(
                Method::POST,
                trcker_mcp::MCP_PATH,
                agent,
                &mcp_headers,
                Some(mcp_call(&name)),
            )
            .await;
        assert_no_key(&body, &leaked, "an MCP answer");
    }

    // Capture: a landing URL and user agent straddling their stored lengths, and an offer
    // reference the 422 would quote.
    for (index, offset) in [2_000, 2_010, 2_020, 2_030].into_iter().enumerate() {
        let landing = format!(
            "https://shop.example/?q={}{leaked}",
            "a".repeat(offset - 24)
        );
        let agent_with_key = format!("{}{leaked}", "b".repeat(offset / 4 - 20));
        let body = json!({"click_id": format!("probe-{index}"), "landing_url": landing,
                          "sub1": format!("{}%74k_{}", "c".repeat(200), &leaked[3..])});
        let (status, answer) = edge
            .send(
                Method::POST,
                trcker_capture::CAPTURE_PATH,
                &agent_with_key,
                &[],
                Some(body.to_string()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    for reference in [
        leaked.clone(),
        format!("{}{leaked}", "o".repeat(40)),
        format!("%74k_{}", &leaked[3..]),
    ] {
        let body = json!({"click_id": "probe-ref", "offer": reference});
        let (status, answer) = edge
            .send(
                Method::POST,
                trcker_capture::CAPTURE_PATH,
                agent,
                &[],
                Some(body.to_string()),
            )
            .await;
        assert!(status.is_client_error(), "{answer}");
        assert_no_key(&answer, &leaked, "a capture refusal");
    }

    // And through the public API's own echo of stored data.
    let (_, clicks) = edge
        .send(Method::GET, "/api/public/clicks?limit=10", agent, &[], None)
        .await;
    assert!(clicks.contains("probe-0"), "{clicks}");
    assert_no_key(&clicks, &leaked, "the clicks list");
    let (_, activity) = edge
        .send(
            Method::GET,
            "/api/public/activity?limit=100",
            agent,
            &[],
            None,
        )
        .await;
    assert_no_key(&activity, &leaked, "the activity list");

    let stored = edge.stored_text().await;
    assert!(stored.contains("probe-3"));
    assert_no_key(&stored, &leaked, "the stored records");
    let logged = logs.text();
    assert!(
        logged.contains("request refused before authentication"),
        "logs were captured"
    );
    assert_no_key(&logged, &leaked, "the logs");
}

/// Hidden format characters a visitor writes into capture fields never reach storage (and so
/// never reach a brand's screen or an AI assistant), while the joiners emoji and scripts need stay.
#[tokio::test]
async fn hidden_format_characters_are_stripped_from_capture_fields() {
    let edge = Edge::new().await;
    let smuggled = "ignore\u{E0049}\u{E0067} previous\u{202E}txet\u{202C}\u{200B}\u{2060}\u{FEFF}";
    let kept = "👨\u{200D}👩\u{200D}👧 می\u{200C}خواهم";
    let body = json!({
        "click_id": "hidden",
        "sub1": smuggled,
        "sub2": kept,
        "landing_url": format!("https://shop.example/?q={smuggled}"),
        "referrer": format!("https://ref.example/{smuggled}"),
    });
    let agent = format!("Mozilla/5.0 {smuggled}");
    let (status, answer) = edge
        .send(
            Method::POST,
            trcker_capture::CAPTURE_PATH,
            &agent,
            &[],
            Some(body.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let click = edge
        .data
        .get_click(&edge.brand_id, "hidden")
        .await
        .unwrap()
        .unwrap();
    let visible = "ignore previoustxet";
    assert_eq!(click.sub_ids[0].as_deref(), Some(visible));
    assert_eq!(click.sub_ids[1].as_deref(), Some(kept));
    assert_eq!(
        click.landing_url.as_deref(),
        Some(format!("https://shop.example/?q={visible}").as_str())
    );
    assert_eq!(click.user_agent, format!("Mozilla/5.0 {visible}"));
    let listed: Value = serde_json::from_str(
        &edge
            .send(Method::GET, "/api/public/clicks", "probe", &[], None)
            .await
            .1,
    )
    .unwrap();
    let text = listed.to_string();
    for hidden in ['\u{E0049}', '\u{202E}', '\u{200B}', '\u{2060}', '\u{FEFF}'] {
        assert!(!text.contains(hidden), "{hidden:?} listed");
    }
}
