//! The graph as Graphviz DOT.

use std::fmt::Write;

use crate::image::Image;
use crate::model::{Cfg, EdgeKind, Function};

fn edge_style(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::Fallthrough => "color=gray40",
        EdgeKind::Jump => "color=blue",
        EdgeKind::CondTaken => "color=darkgreen",
        EdgeKind::CondNotTaken => "color=red",
        EdgeKind::Call => "color=purple, style=dashed",
        EdgeKind::Return => "color=black",
        EdgeKind::IndirectJump => "color=orange, style=bold",
        EdgeKind::IndirectCall => "color=orange, style=dashed",
        EdgeKind::TailCall => "color=purple, style=bold",
        EdgeKind::JumpTable => "color=darkcyan",
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('<', "\\<")
        .replace('>', "\\>")
}

/// Graphviz DOT of `functions` (each its own cluster), blocks listing their
/// instructions, edges styled by kind. Calls and tail calls point to the
/// callee's entry when it is drawn, else to a small callee node.
/// `highlight` blocks are filled (used by `talos diff`).
#[must_use]
pub fn to_dot(cfg: &Cfg, image: &Image<'_>, functions: &[&Function], highlight: &[u64]) -> String {
    let dec = crate::arch::decoder_for(image).ok();
    let mut out = String::new();
    let _ = writeln!(out, "digraph cfg {{");
    let _ = writeln!(out, "  graph [fontname=\"monospace\", compound=true];");
    let _ = writeln!(
        out,
        "  node [shape=box, fontname=\"monospace\", fontsize=9];"
    );
    let _ = writeln!(out, "  edge [fontname=\"monospace\", fontsize=8];");
    let drawn: std::collections::BTreeSet<u64> = functions.iter().map(|f| f.addr).collect();
    let mut externals: std::collections::BTreeSet<u64> = std::collections::BTreeSet::new();
    for f in functions {
        let _ = writeln!(out, "  subgraph \"cluster_{:x}\" {{", f.addr);
        let _ = writeln!(
            out,
            "    label=\"{} @ {:#x}\";",
            escape(&f.display_name()),
            f.addr
        );
        for b in &f.blocks {
            let mut label = format!("{:#x}:\\l", b.addr);
            if let Some(d) = &dec {
                let mut a = b.addr;
                for _ in 0..b.instructions.min(64) {
                    let Some(bytes) = image.bytes_from(a) else {
                        break;
                    };
                    let Some(insn) = d.decode(bytes, a, None) else {
                        break;
                    };
                    let text = d.render(bytes, a).unwrap_or_default();
                    label.push_str(&format!("  {:x}  {}\\l", a, escape(&text)));
                    a = insn.end();
                }
                if b.instructions > 64 {
                    label.push_str("  ...\\l");
                }
            }
            let fill = if highlight.contains(&b.addr) {
                ", style=filled, fillcolor=\"#ffd0d0\""
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    \"b{:x}_{:x}\" [label=\"{}\"{}];",
                f.addr, b.addr, label, fill
            );
        }
        let _ = writeln!(out, "  }}");
    }
    for f in functions {
        for b in &f.blocks {
            for e in &b.succs {
                let from = format!("b{:x}_{:x}", f.addr, b.addr);
                let to = match (e.kind, e.addr) {
                    (EdgeKind::Call | EdgeKind::TailCall, Some(t)) if drawn.contains(&t) => {
                        format!("b{t:x}_{t:x}")
                    }
                    (EdgeKind::Call | EdgeKind::TailCall, Some(t)) => {
                        externals.insert(t);
                        format!("f{t:x}")
                    }
                    (_, Some(t)) if f.block_containing(t).is_some() => {
                        format!("b{:x}_{:x}", f.addr, t)
                    }
                    (_, Some(t)) => {
                        externals.insert(t);
                        format!("f{t:x}")
                    }
                    (_, None) => continue,
                };
                let _ = writeln!(
                    out,
                    "  \"{from}\" -> \"{to}\" [{}, label=\"{}\"];",
                    edge_style(e.kind),
                    e.kind.name()
                );
            }
        }
    }
    for t in externals {
        let name = cfg
            .function_at(t)
            .map_or_else(|| format!("{t:#x}"), Function::display_name);
        let _ = writeln!(
            out,
            "  \"f{t:x}\" [label=\"{}\", shape=ellipse];",
            escape(&name)
        );
    }
    let _ = writeln!(out, "}}");
    out
}
