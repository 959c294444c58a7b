//! The id an IncludeOS instance reports for the SMBIOS UUID it was
//! launched with, and back: jetpack gives each launched instance a UUID
//! (qemu `-uuid`, bhyve `-U`) and must know the id the instance will
//! dock with.
//!
//! IncludeOS (src/platform/x86_pc/smbios.cpp) prints the 16 bytes of the
//! type 1 structure at offset 8 each as "%02hhx": 32 lower-case hex
//! digits, no dashes, in the table's byte order. qemu and bhyve write the
//! UUID they are given as SMBIOS 2.6+ says, its first three fields
//! little-endian: 11223344-5566-7788-99aa-bbccddeeff00 becomes the bytes
//! 44 33 22 11 66 55 88 77 99 aa bb cc dd ee ff 00, so the instance says
//! "443322116655887799aabbccddeeff00". The test kernel prints the UUID it
//! reads exactly that way, and the launch integration test compares it
//! with this module's answer: that is what pins it.

use uuid::Uuid;

/// The id an instance launched with `uuid` reports.
pub fn instance_id(uuid: &Uuid) -> String {
    hex::encode(uuid.to_bytes_le())
}

/// The UUID that makes an instance report `id`: None unless `id` is 32
/// lower-case hex digits, as IncludeOS prints them.
pub fn uuid_for_instance_id(id: &str) -> Option<Uuid> {
    if id.len() != 32 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let bytes: [u8; 16] = hex::decode(id).ok()?.try_into().ok()?;
    Some(Uuid::from_bytes_le(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "11223344-5566-7788-99aa-bbccddeeff00";
    const ID: &str = "443322116655887799aabbccddeeff00";

    #[test]
    fn the_first_three_fields_are_little_endian() {
        let uuid = Uuid::parse_str(UUID).unwrap();
        assert_eq!(
            uuid.to_bytes_le(),
            [
                0x44, 0x33, 0x22, 0x11, 0x66, 0x55, 0x88, 0x77, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
                0xff, 0x00
            ]
        );
        assert_eq!(instance_id(&uuid), ID);
    }

    #[test]
    fn ids_give_their_uuids_back() {
        assert_eq!(
            uuid_for_instance_id(ID),
            Some(Uuid::parse_str(UUID).unwrap())
        );
        for bad in [
            "",
            "443322116655887799aabbccddeeff0",
            "443322116655887799aabbccddeeff000",
            "443322116655887799AABBCCDDEEFF00",
            "44332211-6655-8877-99aa-bbccddeeff00",
            "443322116655887799aabbccddeeffzz",
        ] {
            assert_eq!(uuid_for_instance_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips() {
        for _ in 0..100 {
            let uuid = Uuid::new_v4();
            let id = instance_id(&uuid);
            assert_eq!(id.len(), 32);
            assert_eq!(uuid_for_instance_id(&id), Some(uuid));
            assert_eq!(instance_id(&uuid_for_instance_id(&id).unwrap()), id);
        }
    }
}
