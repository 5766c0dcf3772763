//! The tree both spellings are parsed into, and the literal a default is once casts are looked
//! through.

/// An expression tree; only as much of Postgres's grammar as column defaults, check
/// constraints, index expressions and predicates use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    /// A column or other bare name; table and schema qualifiers are dropped.
    Name(String),
    Star,
    Func {
        name: String,
        args: Vec<Expr>,
        distinct: bool,
    },
    Binary {
        op: String,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Unary {
        op: String,
        operand: Box<Expr>,
    },
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `IS NULL`, `IS NOT TRUE`, ... (the test in lower case, without the leading `is`).
    Is {
        operand: Box<Expr>,
        test: String,
    },
    /// `IS DISTINCT FROM`; `IS NOT DISTINCT FROM` is its negation, as Postgres stores it.
    Distinct {
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `left op ANY|ALL (right)`; `IN (..)` ends up here too, as Postgres rewrites it.
    Quantified {
        op: String,
        left: Box<Expr>,
        all: bool,
        right: Box<Expr>,
    },
    Array(Vec<Expr>),
    Row(Vec<Expr>),
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Subscript {
        base: Box<Expr>,
        index: Box<Expr>,
    },
    Collate {
        operand: Box<Expr>,
        collation: String,
    },
    Cast {
        operand: Box<Expr>,
        type_name: String,
    },
}

/// A literal value once casts are looked through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
}

impl Expr {
    /// The expression without the casts wrapped around it.
    pub fn uncast(&self) -> &Expr {
        match self {
            Self::Cast { operand, .. } => operand.uncast(),
            other => other,
        }
    }

    /// The literal this expression is, casts aside (`'-1'::integer`, `-1`, `'USD'::currency`).
    pub fn literal(&self) -> Option<Literal> {
        match self.uncast() {
            Self::Null => Some(Literal::Null),
            Self::Bool(b) => Some(Literal::Bool(*b)),
            Self::Num(n) => Some(Literal::Num(n.clone())),
            Self::Str(s) => Some(Literal::Str(s.clone())),
            Self::Unary { op, operand } if op == "-" => match operand.literal()? {
                Literal::Num(n) => Some(Literal::Num(format!("-{n}"))),
                _ => None,
            },
            _ => None,
        }
    }
}
