//! GRUB script on arbitrary bytes: the input, split at NUL bytes, is `/boot/grub/grub.cfg`, a
//! file it may `source`/`configfile`, a grubenv and a BLS entry (for `blscfg`); the whole
//! `discover` runs on them: lexer, parser, interpreter with its budget, submenus, default.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leapboot::fuzzing::grub(data));
