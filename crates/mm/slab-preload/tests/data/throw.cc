// C++ exceptions thrown and caught through the program's own libgcc_s
// unwinder while malloc is the preload's (which links its own unwinder
// statically): each exception object comes from malloc.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

static int depth(int n) {
    if (n == 0) throw std::runtime_error(std::string(40, 'x'));
    std::vector<int> v(n, n);
    return depth(n - 1) + v[0];
}

int main() {
    int caught = 0;
    for (int i = 0; i < 10000; i++) {
        try {
            depth(1 + i % 16);
        } catch (const std::runtime_error &e) {
            if (e.what()[39] == 'x') caught++;
        }
    }
    std::printf("caught %d\n", caught);
    return caught == 10000 ? 0 : 1;
}
