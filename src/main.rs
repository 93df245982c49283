//! `leapboot`: the same discovery and parsing as the initramfs, on a running system or on disk
//! images. Never writes to any disk or image.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use leapboot::disk::{Disk, RoPolicy};
use leapboot::entry::BootList;
use leapboot::pipeline::{DiskRef, Volumes};

#[derive(Parser)]
#[command(
    name = "leapboot",
    version,
    about = "Find boot entries on disks, read-only, the way leapboot's /init does"
)]
struct Cli {
    /// Log debug detail to stderr.
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the boot entries found, in menu order, the default marked with '*'.
    ///
    /// With no --disk or --root, scans the block devices of this machine (as root), through
    /// read-only descriptors; their kernel read-only flag is left alone, since the running
    /// system uses them. Disk images and directories need no privileges.
    List {
        /// A disk image file to scan (repeatable). Its partitions are named IMAGE:N.
        #[arg(long, value_name = "IMAGE")]
        disk: Vec<PathBuf>,
        /// A directory to treat as the root of one boot volume (repeatable).
        #[arg(long, value_name = "DIR")]
        root: Vec<PathBuf>,
        /// Print JSON: {"default", "timeout", "entries": [...]}.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    leapboot::logger::init(false, cli.debug);
    match cli.command {
        Command::List { disk, root, json } => list(&disk, &root, json),
    }
}

fn list(disks: &[PathBuf], roots: &[PathBuf], json: bool) -> ExitCode {
    let mut volumes = Volumes::default();
    if disks.is_empty() && roots.is_empty() {
        // A running system writes to its own disks: read them through read-only descriptors
        // but leave the kernel's read-only flag alone (the initramfs sets it; we must not).
        for d in leapboot::discover::block_devices("/sys".as_ref(), "/dev".as_ref()) {
            match Disk::open_with(&d.node, RoPolicy::Leave) {
                Ok(disk) => volumes.add_disk(&disk, &d.name, &|n| {
                    leapboot::discover::partition_name(&d.name, n)
                }),
                Err(e) => log::error!("{e}"),
            }
        }
    }
    let mut opened = Vec::new();
    for path in disks {
        match Disk::open(path) {
            Ok(disk) => opened.push((disk, path.display().to_string())),
            Err(e) => {
                log::error!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let namers: Vec<Box<dyn Fn(u32) -> String + Sync>> = opened
        .iter()
        .map(|(_, name)| {
            let name = name.clone();
            Box::new(move |n| format!("{name}:{n}")) as Box<dyn Fn(u32) -> String + Sync>
        })
        .collect();
    let refs: Vec<DiskRef<'_>> = opened
        .iter()
        .zip(&namers)
        .map(|((disk, name), namer)| DiskRef {
            disk,
            name,
            part_name: namer.as_ref(),
        })
        .collect();
    volumes.add_disks(&refs);
    for r in roots {
        if !r.is_dir() {
            log::error!("{}: not a directory", r.display());
            return ExitCode::FAILURE;
        }
        volumes.add_dir(r);
    }
    let (list, errors) = volumes.boot_list();
    for e in &errors {
        log::warn!("{e}");
    }
    if json {
        println!("{}", to_json(&list, &volumes));
    } else {
        print_table(&list);
    }
    ExitCode::SUCCESS
}

fn to_json(list: &BootList, volumes: &Volumes) -> String {
    let entries: Vec<serde_json::Value> = list
        .entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id,
                "title": e.title,
                "version": e.version,
                "kernel": e.kernel.path,
                "initrd": e.initrds.iter().map(|f| &f.path).collect::<Vec<_>>(),
                "cmdline": e.cmdline,
                "devicetree": e.devicetree.as_ref().map(|f| &f.path),
                "format": e.format,
                "source": e.source,
            })
        })
        .collect();
    // The volumes opened, as blkid would describe them.
    let vols: Vec<serde_json::Value> = volumes
        .list
        .iter()
        .map(|v| {
            let p = v.partition.as_ref();
            serde_json::json!({
                "name": v.name,
                "fs": v.info.as_ref().map(|i| i.kind),
                "uuid": v.info.as_ref().and_then(|i| i.uuid.as_deref()),
                "label": v.info.as_ref().and_then(|i| i.label.as_deref()),
                "partition": p.map(|p| p.number),
                "partuuid": p.and_then(|p| p.part_uuid.as_deref()),
                "parttype": p.and_then(|p| {
                    p.type_guid
                        .clone()
                        .or_else(|| p.mbr_type.map(|t| format!("0x{t:02x}")))
                }),
                "partlabel": p.and_then(|p| p.label.as_deref()),
            })
        })
        .collect();
    let v = serde_json::json!({
        "default": list.default_entry().map(|i| &list.entries[i].id),
        "timeout": list.timeout,
        "entries": entries,
        "volumes": vols,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

fn print_table(list: &BootList) {
    if list.entries.is_empty() {
        println!("no boot entries found");
        return;
    }
    let default = list.default_entry();
    for (i, e) in list.entries.iter().enumerate() {
        let mark = if Some(i) == default { '*' } else { ' ' };
        println!("{mark} {}  [{}]", e.title, e.id);
        println!("    kernel  {}", e.kernel);
        for f in &e.initrds {
            println!("    initrd  {f}");
        }
        println!("    cmdline {}", e.cmdline);
        let line = e.source.line.map(|l| format!(":{l}")).unwrap_or_default();
        println!("    from    {}:{}{line}", e.source.volume, e.source.file);
    }
}
