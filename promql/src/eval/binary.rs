//! Binary operators.
use promql_parser::parser::BinaryExpr;

use super::{Evaluator, Val};
use crate::error::PromqlError;

impl<'a> Evaluator<'a> {
    pub(crate) fn eval_binary(&mut self, b: &'a BinaryExpr, _ts: i64) -> Result<Val<'a>, PromqlError> {
        Err(PromqlError::exec(format!("operator {} is not supported yet", b.op)))
    }
}
