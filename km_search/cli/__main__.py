from km_search.cli import main

main()
