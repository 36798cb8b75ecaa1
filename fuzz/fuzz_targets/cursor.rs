//! Fuzz target `cursor`: decoding pagination cursors (`cursor::CursorCodec::decode`) from
//! arbitrary text, and minting them for arbitrary brands and store positions. Invariants: decoding
//! never panics; what decodes for one brand re-encodes to a cursor that decodes the same and is
//! refused for any other brand; every minted cursor within the length limit round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trcker_shared::cursor::{CursorCodec, InvalidCursor, MAX_CURSOR_LEN};
use trcker_shared::hashing::{KeyHasher, Pepper};
use trcker_shared::ids::BrandId;

fn codec() -> &'static CursorCodec {
    static CODEC: std::sync::OnceLock<CursorCodec> = std::sync::OnceLock::new();
    CODEC.get_or_init(|| CursorCodec::new(&KeyHasher::new(&Pepper::insecure_dev())))
}

fn brand(id: &str) -> BrandId {
    BrandId::parse(id).expect("a valid brand id")
}

fuzz_target!(|input: (bool, &str, &str)| {
    let (mint, brand_text, text) = input;
    let codec = codec();
    if mint {
        // A brand and a position of the input's choosing: minting and decoding agree.
        let Ok(brand_id) = BrandId::parse(brand_text) else {
            return;
        };
        let cursor = codec.encode(&brand_id, text);
        if cursor.len() <= MAX_CURSOR_LEN {
            assert_eq!(codec.decode(&brand_id, &cursor), Ok(text.to_owned()));
        } else {
            assert_eq!(codec.decode(&brand_id, &cursor), Err(InvalidCursor));
        }
        let other = if brand_id.as_str() == "other" {
            brand("demo")
        } else {
            brand("other")
        };
        assert_eq!(codec.decode(&other, &cursor), Err(InvalidCursor));
    } else {
        // A cursor of the input's choosing, as the `cursor` query parameter brings it.
        let demo = brand("demo");
        if let Ok(position) = codec.decode(&demo, text) {
            let again = codec.encode(&demo, &position);
            assert_eq!(codec.decode(&demo, &again), Ok(position));
            assert_eq!(codec.decode(&brand("other"), text), Err(InvalidCursor));
        }
    }
});
