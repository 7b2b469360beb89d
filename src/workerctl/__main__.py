from workerctl.cli import main

main()
