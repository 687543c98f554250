from mvctl.cli.app import main

main()
