//! The console boot menu, as pure parts the PID 1 event loop puts together.
//!
//! [`keys`] decodes console bytes into keys, [`editor`] edits a line, [`state`] is the menu's
//! state machine (keys and ticks in, actions out), [`render`] turns the state into ANSI text
//! for a W×H screen, [`password`] checks the locked-mode password. [`console`] is the only
//! part that touches terminals: it opens every console the kernel writes to, puts them in
//! raw mode, reads keys from all and draws frames on all. The event loop itself lives in
//! `init/src/menu_loop.rs`.

pub mod console;
pub mod editor;
pub mod keys;
pub mod password;
pub mod render;
pub mod state;
