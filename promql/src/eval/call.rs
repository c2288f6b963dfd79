//! Function calls.
use promql_parser::parser::Call;

use super::{Evaluator, Val};
use crate::error::PromqlError;

impl<'a> Evaluator<'a> {
    pub(crate) fn eval_call(&mut self, c: &'a Call, _ts: i64) -> Result<Val<'a>, PromqlError> {
        Err(PromqlError::exec(format!("function {} is not supported yet", c.func.name)))
    }
}
