//! LVM2's text metadata (the volume group description a PV's metadata area holds), parsed and
//! bounded: at most [`MAX_TEXT`] bytes, sections nested at most [`MAX_DEPTH`] deep, at most
//! [`MAX_NODES`] values and sections in all (so no input makes it recurse, loop or allocate
//! without bound), then read into a [`Vg`]: its PVs and its logical volumes, each either
//! linear (an ordered list of segments on PVs) or unsupported (thin, striped, cached, RAID,
//! mirror, snapshot...: named so the caller can log and skip it).
//!
//! The grammar is LVM's config syntax: `key = value`, `name { ... }`, values are integers,
//! `"strings"` (with `\"` and `\\` escapes) or `[lists, of, them]`; `#` starts a comment.

use std::collections::BTreeSet;

/// The largest metadata text read.
pub const MAX_TEXT: usize = 1 << 20;
/// The deepest section nesting accepted (LVM writes 4 levels).
pub const MAX_DEPTH: usize = 16;
/// Values and sections in all.
pub const MAX_NODES: usize = 65_536;
/// Segments of one logical volume at most.
pub const MAX_SEGMENTS: usize = 256;

/// A value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// An integer (LVM writes sizes and counts as decimal integers).
    Int(i64),
    /// A string, unescaped.
    Str(String),
    /// Any other bare word (a float, ...).
    Word(String),
    /// A list of scalars.
    List(Vec<Value>),
}

/// A section's contents, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Section {
    /// `key = value` items.
    pub values: Vec<(String, Value)>,
    /// `name { ... }` subsections.
    pub sections: Vec<(String, Section)>,
}

impl Section {
    /// The first value named `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The first subsection named `name`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, s)| s)
    }

    fn int(&self, key: &str) -> Result<i64, String> {
        match self.get(key) {
            Some(Value::Int(n)) => Ok(*n),
            Some(_) => Err(format!("`{key}` is not an integer")),
            None => Err(format!("no `{key}`")),
        }
    }

    fn uint(&self, key: &str) -> Result<u64, String> {
        u64::try_from(self.int(key)?).map_err(|_| format!("`{key}` is negative"))
    }

    fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn flags(&self, key: &str) -> BTreeSet<&str> {
        match self.get(key) {
            Some(Value::List(l)) => l
                .iter()
                .filter_map(|v| match v {
                    Value::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect(),
            _ => BTreeSet::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok<'a> {
    Word(&'a str),
    Str(String),
    Punct(u8),
}

struct Lexer<'a> {
    s: &'a str,
    at: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    fn next(&mut self) -> Result<Option<Tok<'a>>, String> {
        let b = self.s.as_bytes();
        loop {
            match b.get(self.at) {
                None => return Ok(None),
                Some(b'\n') => {
                    self.line += 1;
                    self.at += 1;
                }
                Some(c) if c.is_ascii_whitespace() => self.at += 1,
                Some(b'#') => {
                    while b.get(self.at).is_some_and(|&c| c != b'\n') {
                        self.at += 1;
                    }
                }
                Some(_) => break,
            }
        }
        let c = b[self.at];
        if b"={}[],".contains(&c) {
            self.at += 1;
            return Ok(Some(Tok::Punct(c)));
        }
        if c == b'"' {
            self.at += 1;
            let mut out = Vec::new();
            loop {
                match b.get(self.at) {
                    None => return Err(format!("line {}: unterminated string", self.line)),
                    Some(b'"') => {
                        self.at += 1;
                        break;
                    }
                    Some(b'\\') if self.at + 1 < b.len() => {
                        out.push(b[self.at + 1]);
                        self.at += 2;
                    }
                    Some(&c) => {
                        if c == b'\n' {
                            self.line += 1;
                        }
                        out.push(c);
                        self.at += 1;
                    }
                }
            }
            return Ok(Some(Tok::Str(String::from_utf8_lossy(&out).into_owned())));
        }
        let start = self.at;
        while b
            .get(self.at)
            .is_some_and(|&c| !c.is_ascii_whitespace() && !b"={}[],\"#".contains(&c))
        {
            self.at += 1;
        }
        Ok(Some(Tok::Word(&self.s[start..self.at])))
    }
}

/// Parses metadata text into its top-level section. Pure; bounded; never panics.
pub fn parse(text: &[u8]) -> Result<Section, String> {
    if text.len() > MAX_TEXT {
        return Err(format!(
            "{} bytes of metadata (at most {MAX_TEXT})",
            text.len()
        ));
    }
    let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
    let s = String::from_utf8_lossy(&text[..end]);
    let mut lx = Lexer {
        s: &s,
        at: 0,
        line: 1,
    };
    let mut nodes = 0usize;
    // An explicit stack of open sections: no recursion.
    let mut stack: Vec<(String, Section)> = vec![(String::new(), Section::default())];
    while let Some(tok) = lx.next()? {
        let line = lx.line;
        match tok {
            Tok::Punct(b'}') => {
                if stack.len() == 1 {
                    return Err(format!("line {line}: `}}` without a section"));
                }
                let (name, sec) = stack.pop().unwrap_or_default();
                if let Some((_, parent)) = stack.last_mut() {
                    parent.sections.push((name, sec));
                }
            }
            Tok::Word(key) => {
                nodes += 1;
                if nodes > MAX_NODES {
                    return Err(format!("more than {MAX_NODES} items"));
                }
                match lx.next()? {
                    Some(Tok::Punct(b'{')) => {
                        if stack.len() > MAX_DEPTH {
                            return Err(format!(
                                "line {line}: sections nested deeper than {MAX_DEPTH}"
                            ));
                        }
                        stack.push((key.to_string(), Section::default()));
                    }
                    Some(Tok::Punct(b'=')) => {
                        let v = value(&mut lx, &mut nodes)?;
                        if let Some((_, sec)) = stack.last_mut() {
                            sec.values.push((key.to_string(), v));
                        }
                    }
                    _ => {
                        return Err(format!(
                            "line {line}: `{key}` is followed by neither `=` nor `{{`"
                        ))
                    }
                }
            }
            _ => return Err(format!("line {line}: unexpected token")),
        }
    }
    if stack.len() != 1 {
        return Err("a section is not closed".into());
    }
    Ok(stack.pop().map(|(_, s)| s).unwrap_or_default())
}

fn scalar(t: Tok<'_>) -> Option<Value> {
    match t {
        Tok::Str(s) => Some(Value::Str(s)),
        Tok::Word(w) => Some(
            w.parse()
                .map(Value::Int)
                .unwrap_or_else(|_| Value::Word(w.into())),
        ),
        Tok::Punct(_) => None,
    }
}

fn value(lx: &mut Lexer<'_>, nodes: &mut usize) -> Result<Value, String> {
    let line = lx.line;
    match lx.next()? {
        Some(Tok::Punct(b'[')) => {
            let mut list = Vec::new();
            loop {
                match lx.next()? {
                    Some(Tok::Punct(b']')) => return Ok(Value::List(list)),
                    Some(Tok::Punct(b',')) => {}
                    Some(t) => {
                        *nodes += 1;
                        if *nodes > MAX_NODES {
                            return Err(format!("more than {MAX_NODES} items"));
                        }
                        list.push(
                            scalar(t).ok_or(format!("line {line}: a list holds only values"))?,
                        );
                    }
                    None => return Err(format!("line {line}: unterminated list")),
                }
            }
        }
        Some(t) => scalar(t).ok_or(format!("line {line}: no value after `=`")),
        None => Err(format!("line {line}: no value after `=`")),
    }
}

/// A physical volume as the metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pv {
    /// Its key in the metadata (`pv0`), which segments name.
    pub key: String,
    /// Its UUID without dashes (as the PV label stores it).
    pub id: String,
    /// Where its first extent starts, in 512-byte sectors.
    pub pe_start: u64,
    /// How many extents it has.
    pub pe_count: u64,
}

/// One segment of a linear logical volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// First extent of the LV it maps.
    pub start_extent: u64,
    /// Extents it maps.
    pub extent_count: u64,
    /// Index into [`Vg::pvs`].
    pub pv: usize,
    /// First extent on that PV.
    pub pe: u64,
}

/// What a logical volume is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LvKind {
    /// Linear: segments in LV order, contiguous from extent 0.
    Linear(Vec<Segment>),
    /// Anything leapboot does not read, with what it is (`thin`, `striped (2 stripes)`).
    Unsupported(String),
}

/// A logical volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lv {
    /// Its name.
    pub name: String,
    /// Its UUID (with LVM's dashes).
    pub id: String,
    /// Whether LVM shows it (hidden LVs are parts of others: thin pool data, RAID images).
    pub visible: bool,
    /// Linear or not.
    pub kind: LvKind,
}

/// A volume group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vg {
    /// Its name.
    pub name: String,
    /// Its UUID (with dashes).
    pub id: String,
    /// The metadata's sequence number: the highest copy is current.
    pub seqno: u64,
    /// Extent size in 512-byte sectors.
    pub extent_size: u64,
    /// Its PVs.
    pub pvs: Vec<Pv>,
    /// Its LVs, in metadata order.
    pub lvs: Vec<Lv>,
}

/// Parses metadata text and reads the volume group it describes. Pure; never panics.
pub fn vg(text: &[u8]) -> Result<Vg, String> {
    let top = parse(text)?;
    let Some((name, sec)) = top.sections.first() else {
        return Err("no volume group section".into());
    };
    let ctx = |e: String| format!("volume group {name}: {e}");
    let extent_size = sec.uint("extent_size").map_err(ctx)?;
    if extent_size == 0 {
        return Err(ctx("extent_size 0".into()));
    }
    let mut pvs = Vec::new();
    for (key, p) in sec
        .section("physical_volumes")
        .map_or(&[][..], |s| &s.sections)
    {
        let ctx = |e: String| format!("volume group {name}, PV {key}: {e}");
        pvs.push(Pv {
            key: key.clone(),
            id: p
                .str("id")
                .ok_or_else(|| ctx("no `id`".into()))?
                .replace('-', ""),
            pe_start: p.uint("pe_start").map_err(ctx)?,
            pe_count: p.uint("pe_count").map_err(ctx)?,
        });
    }
    let mut lvs = Vec::new();
    for (lv_name, l) in sec
        .section("logical_volumes")
        .map_or(&[][..], |s| &s.sections)
    {
        lvs.push(Lv {
            name: lv_name.clone(),
            id: l.str("id").unwrap_or_default().to_string(),
            visible: l.flags("status").contains("VISIBLE"),
            kind: lv_kind(l, &pvs).unwrap_or_else(LvKind::Unsupported),
        });
    }
    Ok(Vg {
        name: name.clone(),
        id: sec.str("id").unwrap_or_default().to_string(),
        seqno: sec.uint("seqno").map_err(ctx)?,
        extent_size,
        pvs,
        lvs,
    })
}

/// A linear LV's segments, or why it is not one (the error text names the segment type or
/// the inconsistency: it is logged as "not read").
fn lv_kind(l: &Section, pvs: &[Pv]) -> Result<LvKind, String> {
    let mut segs = Vec::new();
    for (sname, s) in l.sections.iter().filter(|(n, _)| n.starts_with("segment")) {
        if segs.len() == MAX_SEGMENTS {
            return Err(format!("more than {MAX_SEGMENTS} segments"));
        }
        let ty = s.str("type").unwrap_or("");
        if ty != "striped" {
            return Ok(LvKind::Unsupported(ty.to_string()));
        }
        let stripes = s
            .uint("stripe_count")
            .map_err(|e| format!("{sname}: {e}"))?;
        if stripes != 1 {
            return Ok(LvKind::Unsupported(format!("striped ({stripes} stripes)")));
        }
        let (pv_key, pe) = match s.get("stripes") {
            Some(Value::List(v)) => match v.as_slice() {
                [Value::Str(k), Value::Int(pe)] => (
                    k,
                    u64::try_from(*pe).map_err(|_| format!("{sname}: negative extent"))?,
                ),
                _ => return Err(format!("{sname}: `stripes` is not [\"pvN\", extent]")),
            },
            _ => return Err(format!("{sname}: no `stripes`")),
        };
        let pv = pvs
            .iter()
            .position(|p| &p.key == pv_key)
            .ok_or_else(|| format!("{sname}: no PV `{pv_key}` in the volume group"))?;
        let seg = Segment {
            start_extent: s
                .uint("start_extent")
                .map_err(|e| format!("{sname}: {e}"))?,
            extent_count: s
                .uint("extent_count")
                .map_err(|e| format!("{sname}: {e}"))?,
            pv,
            pe,
        };
        if seg
            .pe
            .checked_add(seg.extent_count)
            .is_none_or(|e| e > pvs[pv].pe_count)
        {
            return Err(format!(
                "{sname}: extents {}+{} are past the end of PV {pv_key} ({} extents)",
                seg.pe, seg.extent_count, pvs[pv].pe_count
            ));
        }
        segs.push(seg);
    }
    segs.sort_by_key(|s| s.start_extent);
    let mut next = 0u64;
    for s in &segs {
        if s.start_extent != next || s.extent_count == 0 {
            return Err(format!(
                "segments do not cover the volume contiguously at extent {next}"
            ));
        }
        next = s
            .start_extent
            .checked_add(s.extent_count)
            .ok_or("extent count overflows")?;
    }
    if segs.is_empty() {
        return Err("no segments".into());
    }
    Ok(LvKind::Linear(segs))
}
