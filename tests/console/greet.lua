return { name = "greet" }
