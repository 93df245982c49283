//! Partition tables (MBR with EBR chains, protective/hybrid MBR, GPT behind its guard) on an
//! in-memory disk of arbitrary bytes: never a panic or a hang, every partition inside the disk.
#![no_main]

use leapboot::disk::Disk;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let disk = Disk::from_bytes("fuzz", data.to_vec());
    if let Ok(table) = leapboot::partition::read(&disk) {
        for p in table.partitions() {
            assert!(p
                .start
                .checked_add(p.len)
                .is_some_and(|end| end <= disk.size()));
        }
    }
});
