//! Aggregation operators.
use promql_parser::parser::AggregateExpr;

use super::{Evaluator, Val};
use crate::error::PromqlError;

impl<'a> Evaluator<'a> {
    pub(crate) fn eval_aggregate(&mut self, a: &'a AggregateExpr, _ts: i64) -> Result<Val<'a>, PromqlError> {
        Err(PromqlError::exec(format!("aggregation {} is not supported yet", a.op)))
    }
}
