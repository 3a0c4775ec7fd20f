pub mod moto;
pub mod output;
pub mod runtime_api;
