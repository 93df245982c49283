#!/bin/sh
# Builds the disk images of issue 11's reproductions with the real tools, into DIR (default
# target/hostile). Measure with: leapboot list --disk DIR/<image> --stats (see SECURITY.md).
# Needs: mkfs.vfat, mtools (mmd, mcopy, mdel, mlabel), mkfs.ext4, sfdisk, python3.
set -eu
out=${1:-target/hostile}
mkdir -p "$out"
cd "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. FAT directory whose cluster chain loops (full of deleted records): mkfs.vfat + mtools,
#    then the first cluster of /loader pointed at itself in both FATs.
rm -f fat-loop.img
mkfs.vfat -F 16 -C fat-loop.img 16384 >/dev/null
mmd -i fat-loop.img ::/loader
for i in $(seq 0 99); do echo x >"$tmp/f$i.conf"; done
mcopy -i fat-loop.img "$tmp"/f*.conf ::/loader/
mdel -i fat-loop.img '::/loader/*.conf'
python3 - fat-loop.img <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
u16 = lambda at: b[at] | b[at + 1] << 8
sec, res, nf, rootn, fsz = u16(11), u16(14), b[16], u16(17), u16(22)
fat, root = res * sec, (res + nf * fsz) * sec
at = next(root + 32 * i for i in range(rootn) if bytes(b[root + 32 * i:root + 32 * i + 11]) == b"LOADER     ")
c = u16(at + 26)
for k in range(nf):
    o = fat + k * fsz * sec + 2 * c
    b[o:o + 2] = c.to_bytes(2, 'little')
open(p, 'wb').write(b)
PY

# 2a. 1024 hard links (ln) to one 1 MiB BLS entry, in ext4 (mkfs.ext4 -d).
mkdir -p "$tmp/links/loader/entries"
python3 - "$tmp/links/loader/entries/e0000.conf" <<'PY'
import sys
s = "title T\nlinux /vmlinuz\noptions " + "quiet " * 170000 + "\n"
open(sys.argv[1], 'w').write(s[: (1 << 20) - 1] + "\n")
PY
for i in $(seq 1 1023); do ln "$tmp/links/loader/entries/e0000.conf" "$tmp/links/loader/entries/e$(printf %04d "$i").conf"; done
rm -f hardlinks.img
truncate -s 32M hardlinks.img
mkfs.ext4 -q -F -d "$tmp/links" hardlinks.img

# 2b. One 1 MiB syslinux.cfg: a global APPEND of ~1000 KiB and 1024 labels (FAT).
python3 - "$tmp/syslinux.cfg" <<'PY'
import sys
labels = "".join(f"LABEL l{i}\nKERNEL /vmlinuz\n" for i in range(1024))
append = "APPEND " + "a" * ((1 << 20) - len(labels) - 16) + "\n"
open(sys.argv[1], 'w').write(append + labels)
PY
rm -f syslinux.img
mkfs.vfat -C syslinux.img 8192 >/dev/null
mmd -i syslinux.img ::/syslinux
mcopy -i syslinux.img "$tmp/syslinux.cfg" ::/syslinux/syslinux.cfg

# 2c. A 10 MiB GPT image (sfdisk) with four partitions over one filesystem that holds 64
#     hard links to a 1 MiB entry: sfdisk writes the table, then entries 2-4 are moved
#     onto partition 1's range and both CRCs recomputed.
mkdir -p "$tmp/four/loader/entries"
cp "$tmp/links/loader/entries/e0000.conf" "$tmp/four/loader/entries/e00.conf"
for i in $(seq 1 63); do ln "$tmp/four/loader/entries/e00.conf" "$tmp/four/loader/entries/e$(printf %02d "$i").conf"; done
rm -f overlap.img
truncate -s 10M overlap.img
printf 'label: gpt\nstart=2048, size=16000\nstart=18048, size=100\nstart=18148, size=100\nstart=18248, size=100\n' | sfdisk -q overlap.img
truncate -s 8M "$tmp/fs.img"
mkfs.ext4 -q -F -d "$tmp/four" "$tmp/fs.img"
dd if="$tmp/fs.img" of=overlap.img bs=512 seek=2048 conv=notrunc status=none
python3 - overlap.img <<'PY'
import sys, zlib
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
u32 = lambda at: int.from_bytes(b[at:at + 4], 'little')
for hdr in (512, len(b) - 512):
    lba = int.from_bytes(b[hdr + 72:hdr + 80], 'little'); n, size = u32(hdr + 80), u32(hdr + 84)
    arr = lba * 512
    first = bytes(b[arr + 32:arr + 48])
    for i in range(1, 4):
        b[arr + i * size + 32:arr + i * size + 48] = first
    b[hdr + 88:hdr + 92] = (zlib.crc32(bytes(b[arr:arr + n * size])) & 0xffffffff).to_bytes(4, 'little')
    hs = u32(hdr + 12); b[hdr + 16:hdr + 20] = bytes(4)
    b[hdr + 16:hdr + 20] = (zlib.crc32(bytes(b[hdr:hdr + hs])) & 0xffffffff).to_bytes(4, 'little')
open(p, 'wb').write(b)
PY

# 5. GRUB: one word of 300,000 parts; a grub.cfg sourcing itself with a large uncalled
#    function; loader.conf `default *[` + 1 MiB over 16 entries (FAT each).
python3 - "$tmp" <<'PY'
import sys, os
t = sys.argv[1]
open(f"{t}/word.cfg", "w").write("set x=\"a b\"\nmenuentry M {\n linux /vmlinuz a" + "$x." * 150000 + "\n}\n")
body = "function big {\n" + "  set a=\"$a$a$a$a\" b=1 c=2 d=3 e=4 f=5\n" * 23000 + "}\n"
open(f"{t}/self.cfg", "w").write(body + "menuentry M { linux /vmlinuz }\nsource /boot/grub/grub.cfg\n")
open(f"{t}/loader.conf", "w").write("default *[" + "a" * ((1 << 20) - 20) + "\n")
os.makedirs(f"{t}/entries", exist_ok=True)
for i in range(16):
    open(f"{t}/entries/e{i:02}.conf", "w").write(f"title E{i}\nlinux /vmlinuz\n")
PY
for img in grub-word grub-self glob; do rm -f $img.img; mkfs.vfat -C $img.img 8192 >/dev/null; done
for img in grub-word grub-self; do mmd -i $img.img ::/boot ::/boot/grub; done
mcopy -i grub-word.img "$tmp/word.cfg" ::/boot/grub/grub.cfg
mcopy -i grub-self.img "$tmp/self.cfg" ::/boot/grub/grub.cfg
mmd -i glob.img ::/loader ::/loader/entries
mcopy -i glob.img "$tmp/loader.conf" ::/loader/loader.conf
mcopy -i glob.img "$tmp"/entries/*.conf ::/loader/entries/

# 6. A filesystem label holding escape sequences (the boot sector's label field patched).
rm -f label.img
mkfs.vfat -n ESP -C label.img 8192 >/dev/null
mmd -i label.img ::/loader ::/loader/entries
printf 'title L\nlinux /vmlinuz\n' >"$tmp/l.conf"
mcopy -i label.img "$tmp/l.conf" ::/loader/entries/l.conf
python3 - label.img <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
b[43:54] = b"\x1b[2J\x1b[1;1H "   # the BPB volume label: 11 bytes
open(p, 'wb').write(b)
PY
ls -la "$PWD"
