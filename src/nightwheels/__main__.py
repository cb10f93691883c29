from nightwheels.cli.main import main

main()
