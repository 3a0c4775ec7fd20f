pub mod moto;
pub mod runtime_api;
