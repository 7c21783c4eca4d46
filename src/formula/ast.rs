//! The syntax tree of a formula.

use super::functions::Func;

/// Binary operators, in Airtable's precedence order (lowest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Concat,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Eq => "=",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Gt => ">",
            BinOp::Le => "<=",
            BinOp::Ge => ">=",
            BinOp::Concat => "&",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }
}

/// A node of the syntax tree with its source span (character offsets, end exclusive).
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Number(f64),
    Text(String),
    /// A field reference: `{Field Name}` (braced) or a bare identifier.
    Field {
        name: String,
        braced: bool,
    },
    /// A function call. `name` is as written; `func` is `None` for a function Airtable does not have
    /// (rejected by `check`, evaluates to an error).
    Call {
        name: String,
        func: Option<Func>,
        args: Vec<Expr>,
    },
    Neg(Box<Expr>),
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
}

impl Expr {
    /// Calls `f` on this node and every node below it (pre-order, iterative so no recursion limit applies).
    pub fn walk<'a>(&'a self, mut f: impl FnMut(&'a Expr)) {
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            f(e);
            match &e.kind {
                ExprKind::Call { args, .. } => stack.extend(args.iter().rev()),
                ExprKind::Neg(inner) => stack.push(inner),
                ExprKind::Binary { lhs, rhs, .. } => {
                    stack.push(rhs);
                    stack.push(lhs);
                }
                _ => {}
            }
        }
    }
}
