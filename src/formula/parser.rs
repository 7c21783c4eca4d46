//! Precedence-climbing parser: comparison < `&` < `+ -` < `* /` < unary `-`.

use super::MAX_DEPTH;
use super::ast::{BinOp, Expr, ExprKind};
use super::error::{FormulaError, FormulaErrorKind};
use super::functions::Func;
use super::lexer::{Tok, Token, tokenize};

const PREC_UNARY: u8 = 5;

/// Extra advice when a token shows a habit from another language.
fn habit_hint(tok: &Tok) -> Option<&'static str> {
    let Tok::Ident(name) = tok else {
        return None;
    };
    Some(match name.to_ascii_uppercase().as_str() {
        "AND" => "Airtable has no `and` operator: write AND(cond1, cond2).",
        "OR" => "Airtable has no `or` operator: write OR(cond1, cond2).",
        "NOT" => "NOT is a function: write NOT(condition).",
        "IS" | "NULL" => "To test for empty, write {Field} = BLANK().",
        "IN" => "Airtable has no `in`: write OR({Field} = 'a', {Field} = 'b').",
        "LIKE" | "CONTAINS" => "To search text, write FIND('needle', {Field}) > 0.",
        "THEN" | "ELSE" => "Conditions are written IF(condition, value_if_true, value_if_false).",
        _ => return None,
    })
}

fn infix(tok: &Tok) -> Option<(BinOp, u8)> {
    Some(match tok {
        Tok::Eq => (BinOp::Eq, 1),
        Tok::Ne => (BinOp::Ne, 1),
        Tok::Lt => (BinOp::Lt, 1),
        Tok::Gt => (BinOp::Gt, 1),
        Tok::Le => (BinOp::Le, 1),
        Tok::Ge => (BinOp::Ge, 1),
        Tok::Amp => (BinOp::Concat, 2),
        Tok::Plus => (BinOp::Add, 3),
        Tok::Minus => (BinOp::Sub, 3),
        Tok::Star => (BinOp::Mul, 4),
        Tok::Slash => (BinOp::Div, 4),
        _ => return None,
    })
}

/// Parses a formula (syntax only).
pub fn parse(src: &str) -> Result<Expr, FormulaError> {
    let tokens = tokenize(src)?;
    let mut p = Parser {
        src,
        tokens,
        pos: 0,
    };
    if matches!(p.peek().tok, Tok::Eof) {
        return Err(FormulaError::new(
            FormulaErrorKind::Syntax,
            src,
            Some(0),
            "Syntax error at position 0: the formula is empty. Fix: write an expression, \
             e.g. {Status} = 'Done'.",
        ));
    }
    let (expr, _) = p.expr(1, 0).map_err(|e| *e)?;
    if !matches!(p.peek().tok, Tok::Eof) {
        return Err(*p.err_trailing());
    }
    Ok(expr)
}

/// Errors are boxed so that the recursive functions' frames stay small (deep formulas must fit
/// in a worker thread's stack, in debug builds too).
type PResult<T> = Result<T, Box<FormulaError>>;

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    pos: usize,
}

static EOF: Token = Token {
    tok: Tok::Eof,
    start: 0,
    end: 0,
};

impl Parser<'_> {
    fn peek(&self) -> &Token {
        self.tokens
            .get(self.pos)
            .or_else(|| self.tokens.last())
            .unwrap_or(&EOF)
    }

    fn previous(&self) -> Option<&Tok> {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.tokens.get(i))
            .map(|t| &t.tok)
    }

    fn advance(&mut self) {
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
    }

    /// Returns the expression and the depth of its tree.
    fn expr(&mut self, min_prec: u8, depth: usize) -> PResult<(Expr, usize)> {
        if depth >= MAX_DEPTH {
            return Err(self.err_too_deep(self.peek().start));
        }
        let (mut lhs, mut lhs_depth) = self.prefix(depth)?;
        loop {
            let t = self.peek();
            let Some((op, prec)) = infix(&t.tok) else {
                break;
            };
            if prec < min_prec {
                break;
            }
            let op_pos = t.start;
            self.advance();
            if matches!(self.peek().tok, Tok::Eof) {
                return Err(self.err_dangling_operator(op, op_pos));
            }
            let (rhs, rhs_depth) = self.expr(prec + 1, depth + 1)?;
            let d = 1 + lhs_depth.max(rhs_depth);
            if d > MAX_DEPTH {
                return Err(self.err_too_deep(op_pos));
            }
            lhs = Expr {
                start: lhs.start,
                end: rhs.end,
                kind: ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
            };
            lhs_depth = d;
        }
        Ok((lhs, lhs_depth))
    }

    fn prefix(&mut self, depth: usize) -> PResult<(Expr, usize)> {
        let (start, end) = (self.peek().start, self.peek().end);
        let leaf = |kind| Ok((Expr { kind, start, end }, 1));
        match &self.peek().tok {
            Tok::Number(n) => {
                let n = *n;
                self.advance();
                leaf(ExprKind::Number(n))
            }
            Tok::Str(s) => {
                let s = s.clone();
                self.advance();
                leaf(ExprKind::Text(s))
            }
            Tok::Field(name) => {
                let name = name.clone();
                self.advance();
                leaf(ExprKind::Field { name, braced: true })
            }
            Tok::Ident(name) => {
                let name = name.clone();
                self.advance();
                if matches!(self.peek().tok, Tok::LParen) {
                    self.call(name, start, depth)
                } else {
                    leaf(ExprKind::Field {
                        name,
                        braced: false,
                    })
                }
            }
            Tok::LParen => {
                self.advance();
                let (mut inner, d) = self.expr(1, depth + 1)?;
                let close = self.peek();
                if !matches!(close.tok, Tok::RParen) {
                    return Err(self.err_unclosed_paren(start));
                }
                inner.start = start;
                inner.end = close.end;
                self.advance();
                Ok((inner, d))
            }
            Tok::Minus => {
                self.advance();
                let (inner, d) = self.expr(PREC_UNARY, depth + 1)?;
                let end = inner.end;
                Ok((
                    Expr {
                        kind: ExprKind::Neg(Box::new(inner)),
                        start,
                        end,
                    },
                    d + 1,
                ))
            }
            _ => Err(self.err_expected_value()),
        }
    }

    fn call(&mut self, name: String, start: usize, depth: usize) -> PResult<(Expr, usize)> {
        let open = self.peek().start; // `(`
        self.advance();
        let mut args = Vec::new();
        let mut max_d = 0;
        if matches!(self.peek().tok, Tok::RParen) {
            let end = self.peek().end;
            self.advance();
            let func = Func::from_name(&name);
            return Ok((
                Expr {
                    kind: ExprKind::Call { func, name, args },
                    start,
                    end,
                },
                1,
            ));
        }
        loop {
            let (arg, d) = self.expr(1, depth + 1)?;
            max_d = max_d.max(d);
            args.push(arg);
            match self.peek().tok {
                Tok::Comma => self.advance(),
                Tok::RParen => {
                    let end = self.peek().end;
                    self.advance();
                    let func = Func::from_name(&name);
                    return Ok((
                        Expr {
                            kind: ExprKind::Call { func, name, args },
                            start,
                            end,
                        },
                        max_d + 1,
                    ));
                }
                _ => return Err(self.err_bad_argument_separator(&name, open)),
            }
        }
    }

    // Error builders: out of line so the recursive functions above keep small frames.

    #[cold]
    #[inline(never)]
    fn error_at(&self, pos: usize, msg: String) -> Box<FormulaError> {
        Box::new(FormulaError::new(
            FormulaErrorKind::Syntax,
            self.src,
            Some(pos),
            msg,
        ))
    }

    #[cold]
    #[inline(never)]
    fn err_too_deep(&self, pos: usize) -> Box<FormulaError> {
        Box::new(FormulaError::new(
            FormulaErrorKind::TooDeep,
            self.src,
            Some(pos),
            format!(
                "The formula nests deeper than {MAX_DEPTH} levels (position {pos}). \
                 Fix: simplify it, e.g. use SWITCH() instead of deeply nested IF()s, or split it."
            ),
        ))
    }

    #[cold]
    #[inline(never)]
    fn err_dangling_operator(&self, op: BinOp, op_pos: usize) -> Box<FormulaError> {
        self.error_at(
            op_pos,
            format!(
                "Syntax error at position {op_pos}: the operator `{}` has nothing after it. \
                 Fix: add the right-hand value, or remove the operator.",
                op.symbol()
            ),
        )
    }

    #[cold]
    #[inline(never)]
    fn err_unclosed_paren(&self, open: usize) -> Box<FormulaError> {
        let close = self.peek();
        self.error_at(
            close.start,
            format!(
                "Syntax error at position {}: expected `)` to close the `(` at position {open}, \
                 but found {}. Fix: add the missing `)`.",
                close.start,
                close.tok.describe()
            ),
        )
    }

    #[cold]
    #[inline(never)]
    fn err_expected_value(&self) -> Box<FormulaError> {
        let t = self.peek();
        let hint = match t.tok {
            Tok::Eof => "Fix: complete the formula.",
            Tok::RParen | Tok::Comma => {
                "Fix: a value is missing here; remove the extra separator or fill in the \
                 argument."
            }
            _ => {
                "Fix: put a value here: a number, 'text', {Field Name} or a function call \
                 such as TRUE()."
            }
        };
        self.error_at(
            t.start,
            format!(
                "Syntax error at position {}: expected a value but found {}. {hint}",
                t.start,
                t.tok.describe()
            ),
        )
    }

    #[cold]
    #[inline(never)]
    fn err_bad_argument_separator(&self, name: &str, open: usize) -> Box<FormulaError> {
        let t = self.peek();
        let before = self.previous().and_then(habit_hint);
        let glued = self.glued_to_text();
        let hint = if matches!(t.tok, Tok::Eof) {
            "Fix: add the missing `)`."
        } else if let Some(g) = glued.as_deref() {
            g
        } else {
            habit_hint(&t.tok).or(before).unwrap_or(
                "Fix: separate arguments with `,` and close the call with `)`; field names \
                 with spaces need braces, e.g. {Due Date}.",
            )
        };
        self.error_at(
            t.start,
            format!(
                "Syntax error at position {}: in the call to {name}( opened at position \
                 {open}, expected `,` or `)` but found {}. {hint}",
                t.start,
                t.tok.describe()
            ),
        )
    }

    /// `"say "hi""`: a word glued to the text before it, whose closing quote was meant to be
    /// inside the text.
    fn glued_to_text(&self) -> Option<String> {
        let t = self.peek();
        let prev = self.tokens.get(self.pos.checked_sub(1)?)?;
        if !matches!(t.tok, Tok::Ident(_) | Tok::Number(_)) || prev.end != t.start {
            return None;
        }
        let Tok::Str(_) = prev.tok else {
            return None;
        };
        let at = prev.end.checked_sub(1)?;
        let quote = self.src.chars().nth(at)?;
        let other = if quote == '\'' { '"' } else { '\'' };
        Some(format!(
            "The {quote} at position {at} ends the text early; if it belongs inside the text, \
             escape it as \\{quote} or quote the whole text with {other} instead."
        ))
    }

    #[cold]
    #[inline(never)]
    fn err_trailing(&self) -> Box<FormulaError> {
        let t = self.peek();
        let glued = self.glued_to_text();
        let hint = match t.tok {
            _ if glued.is_some() => glued.as_deref().unwrap_or_default(),
            Tok::RParen => "Fix: remove the extra `)` or add the matching `(`.",
            ref other if habit_hint(other).is_some() => habit_hint(other).unwrap_or_default(),
            // `NOT {A}`: the word before was read as a field name
            _ if self.previous().and_then(habit_hint).is_some() => {
                self.previous().and_then(habit_hint).unwrap_or_default()
            }
            _ => {
                "Fix: join the parts with an operator (= != < > <= >= & + - * /), or wrap them \
                 in a function such as AND(a, b); field names with spaces need braces, e.g. \
                 {Due Date}."
            }
        };
        self.error_at(
            t.start,
            format!(
                "Syntax error at position {}: found {} after a complete expression. {hint}",
                t.start,
                t.tok.describe()
            ),
        )
    }
}
