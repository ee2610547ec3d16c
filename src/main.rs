fn main() {
    if let Err(message) = pianoforte::cli::run() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}
