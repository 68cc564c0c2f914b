//! Bringing models and runs in from other tools: a Hugging Face snapshot or repository
//! folder (`mreg import hf`), an MLflow tracking store (`mreg import mlflow`).

pub mod hf;
pub mod mlflow;
