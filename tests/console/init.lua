print("init file", arg[0])
