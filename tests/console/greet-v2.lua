return { name = "greet-v2" }
