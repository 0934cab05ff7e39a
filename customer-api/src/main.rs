fn main() -> anyhow::Result<()> {
    shared_model::service::main(&customer_api::SERVICE)
}
