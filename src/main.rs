fn main() {
    std::process::exit(jetpack::cli::main());
}
