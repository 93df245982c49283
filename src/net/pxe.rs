//! pxelinux's search for its configuration file, as pxelinux itself does it.
