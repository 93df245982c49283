//! LVM2 on arbitrary bytes: the metadata text parser, and the PV label and metadata area
//! readers over the input as a whole volume (then its LVs mapped).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = leapboot::lvm::metadata::vg(data);
    let _ = leapboot::lvm::parse_label(data);
    let _ = leapboot::lvm::parse_mda_header(data, 4096);
    let disk = leapboot::disk::Disk::from_bytes("fuzz", data.to_vec());
    let vol = disk.slice(0, disk.size());
    if let Ok(Some(pv)) = leapboot::lvm::read_pv(&vol) {
        let _ = leapboot::lvm::logical_volumes(&[(vol, pv)]);
    }
});
