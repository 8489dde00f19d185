from goldloop.cli.main import main

main()
