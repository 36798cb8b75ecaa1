//! The client's IP behind trusted proxies: `X-Forwarded-For` is believed only as far as the
//! configured number of hops, counted from the right, because anything to their left was written
//! by whoever sent the request.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// The client address for `source_ip` (the address API Gateway saw) after `trusted_hops` proxies.
///
/// The chain is every `X-Forwarded-For` entry followed by `source_ip`; each trusted proxy appended
/// the address it received from, so the client is `trusted_hops` entries left of the end. If
/// API Gateway itself appended the source address, that duplicate is ignored. A chain shorter than
/// the hops, or an entry that is not an IP address, falls back to `source_ip`: a forged or
/// malformed header never replaces the address the connection came from.
pub fn client_ip(source_ip: &str, headers: &HeaderMap, trusted_hops: u8) -> String {
    if trusted_hops == 0 {
        return source_ip.to_owned();
    }
    let mut chain: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return source_ip.to_owned();
        };
        chain.extend(
            text.split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty()),
        );
    }
    if chain.last() == Some(&source_ip) {
        chain.pop();
    }
    chain.push(source_ip);
    let hops = usize::from(trusted_hops);
    if chain.len() <= hops {
        return source_ip.to_owned();
    }
    let candidate = chain[chain.len() - 1 - hops];
    match candidate.parse::<IpAddr>() {
        Ok(address) => address.to_string(),
        Err(_) => source_ip.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn hops_decide_how_far_the_header_is_believed() {
        let cdn = "198.51.100.1";
        // No trusted hops: the header is ignored, whatever it says.
        assert_eq!(client_ip(cdn, &forwarded(&["203.0.113.5"]), 0), cdn);
        // One CDN: the entry it appended is the client.
        assert_eq!(
            client_ip(cdn, &forwarded(&["203.0.113.5"]), 1),
            "203.0.113.5"
        );
        // A client forging entries cannot move further left than the trusted hops allow.
        assert_eq!(
            client_ip(cdn, &forwarded(&["10.0.0.1, 203.0.113.5"]), 1),
            "203.0.113.5"
        );
        // Two proxies, header split over two lines.
        assert_eq!(
            client_ip(cdn, &forwarded(&["203.0.113.5", "192.0.2.7"]), 2),
            "203.0.113.5"
        );
        // API Gateway appending the source address itself does not count as a hop.
        assert_eq!(
            client_ip(cdn, &forwarded(&["203.0.113.5, 198.51.100.1"]), 1),
            "203.0.113.5"
        );
        // Too short a chain, garbage, or no header: the connection's address.
        assert_eq!(client_ip(cdn, &forwarded(&["203.0.113.5"]), 3), cdn);
        assert_eq!(client_ip(cdn, &forwarded(&["not-an-ip"]), 1), cdn);
        assert_eq!(client_ip(cdn, &HeaderMap::new(), 1), cdn);
        assert_eq!(
            client_ip(cdn, &forwarded(&["2001:db8::1"]), 1),
            "2001:db8::1"
        );
    }
}
